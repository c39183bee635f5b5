//! The client contract on the wire: JSON-RPC 2.0 requests, batches,
//! responses and notifications, the error code table and the close codes.
//! Nothing outside this module serializes frames for the socket.

mod close;
mod error;
mod exact_id;
mod incoming;
mod outgoing;
#[cfg(test)]
mod properties;
mod strict;
#[cfg(test)]
mod tests;

pub use close::CloseReason;
pub use error::{ErrorCode, RpcError};
pub(crate) use incoming::present;
pub use incoming::{parse, Id, Incoming, Item, Rejected, Request};
pub use outgoing::{to_text, Notification, Outcome, Response, Version};
