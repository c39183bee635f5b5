//! The library on a Redis Cluster (6 nodes) and a Sentinel set (master,
//! replica, 3 sentinels) that each test starts on loopback: queues on every
//! master, hash-tag refusals before any write, and failover under load with
//! and without replica acknowledgements.

mod cluster;
mod scenario;
mod sentinel;
