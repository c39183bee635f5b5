//! Every setting of the gateway, defined once: its field and default, its
//! config file key, its flag and its environment variable. Layers apply in
//! this order: defaults < config file < environment < flags. Adding a
//! setting is one entry here and one row in the README's settings table
//! (a test fails when the row is missing).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::define::settings;
use super::{LogFormat, NotifyMode, Rate, TrustedProxies};

settings! {
    /// Where the gateway listens, what it serves, and how it runs.
    group server: ServerSettings, args ServerArgs {
        /// Address to listen on.
        listen: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 8443))
            => key "listen", flag "listen", env "LISTEN_ADDR";
        /// Services (BullMQ queues) clients may call, comma-separated; added
        /// to the config file's `[services]`.
        services: String
            => key "services", flag "services", env "SERVICES";
        /// Serve plain ws:// without TLS (loopback tests, or behind a TLS proxy).
        plain_ws: bool = false
            => key "plain_ws", flag "plain-ws", env "PLAIN_WS",
               arg(num_args = 0..=1, default_missing_value = "true");
        /// TLS certificate chain (PEM).
        tls_cert_file: PathBuf
            => key "tls_cert_file", flag "tls-cert-file", env "TLS_CERT_FILE";
        /// TLS private key (PEM).
        tls_key_file: PathBuf
            => key "tls_key_file", flag "tls-key-file", env "TLS_KEY_FILE";
        /// How job changes are noticed: keyspace notifications (enabled with
        /// CONFIG SET), events streams, auto (keyspace when allowed), or
        /// published (only what workers publish on `job:{jobId}`).
        notify: NotifyMode = NotifyMode::Auto
            => key "notify", flag "notify", env "NOTIFY_MODE";
        /// Log format: text or json.
        log_format: LogFormat = LogFormat::Text
            => key "log_format", flag "log-format", env "LOG_FORMAT";
        /// Dev mode: self-signed certificate and generated secret when none
        /// are given, services demo,data,analysis when none are given, the
        /// built-in worker services; prints the URL, a token and a client.
        dev: bool = false
            => key "dev", flag "dev", env "GATEWAY_DEV",
               arg(num_args = 0..=1, default_missing_value = "true");
        /// Also run the built-in Rust worker services (demo, data, analysis)
        /// in this process, on the same Redis (needs the `dev` feature).
        with_worker: bool = false
            => key "with_worker", flag "with-worker", env "GATEWAY_WORKER",
               arg(num_args = 0..=1, default_missing_value = "true");
        /// Runtime threads; 0: one per core; 1: tokio's single-thread
        /// scheduler. On a small machine shared with Redis and workers, 1
        /// costs less CPU per call (BENCHMARKS.md).
        threads: usize = 0
            => key "threads", flag "threads", env "GATEWAY_THREADS";
    }

    /// Which Redis, and the one the gateway starts when none is given.
    group redis: RedisSettings, args RedisArgs {
        /// Redis URL: `redis://[user:pass@]host:port[/db]` (`rediss://` for
        /// TLS), `redis+cluster://host:port,host:port` for a Redis Cluster,
        /// `redis+sentinel://host:port,host:port/master` for Sentinel.
        /// Unset: start a local redis-server.
        redis_url: String
            => key "url", flag "redis-url", env "REDIS_URL", arg(hide_env_values = true);
        /// BullMQ key prefix, shared with the workers.
        prefix: String = "bull".to_string()
            => key "prefix", flag "prefix", env "BULLMQ_PREFIX";
        /// Where the self-started redis-server keeps its data.
        redis_data_dir: PathBuf = PathBuf::from(".data/redis")
            => key "data_dir", flag "redis-data-dir", env "REDIS_DATA_DIR";
        /// The redis-server binary to start when REDIS_URL is unset.
        redis_server_bin: String = "redis-server".to_string()
            => key "server_bin", flag "redis-server-bin", env "REDIS_SERVER_BIN";
    }

    /// How client tokens are verified.
    group auth: AuthSettings, args AuthArgs {
        /// HS256 shared secret for client tokens.
        jwt_secret: String
            => key "jwt_secret", flag "jwt-secret", env "JWT_SECRET", arg(hide_env_values = true);
        /// PEM public key for client tokens (RSA: RS256, EC: ES256, Ed25519: EdDSA).
        jwt_public_key_file: PathBuf
            => key "jwt_public_key_file", flag "jwt-public-key-file", env "JWT_PUBLIC_KEY_FILE";
        /// Accept this algorithm instead of the key's default (HS384, RS512, PS256, ES384...).
        jwt_algorithm: String
            => key "jwt_algorithm", flag "jwt-algorithm", env "JWT_ALGORITHM";
        /// Required `iss` claim.
        jwt_issuer: String
            => key "jwt_issuer", flag "jwt-issuer", env "JWT_ISSUER";
        /// Required `aud` claim.
        jwt_audience: String
            => key "jwt_audience", flag "jwt-audience", env "JWT_AUDIENCE";
        /// Clock skew allowed on `exp`, seconds.
        jwt_leeway_secs: u64 = 30
            => key "jwt_leeway_secs", flag "jwt-leeway-secs", env "JWT_LEEWAY_SECS";
        /// Longer tokens are refused (401) before any decoding, bytes.
        max_token_bytes: usize = crate::auth::DEFAULT_MAX_TOKEN_BYTES
            => key "max_token_bytes", flag "max-token-bytes", env "MAX_TOKEN_BYTES";
    }

    /// Limits; each breach has its own error or close code.
    group limits: Limits, args LimitsArgs {
        /// Largest text frame answered normally, bytes; larger ones get
        /// -32002, and frames over twice this close the socket with 1009.
        max_message_bytes: usize = 64 * 1024
            => key "max_message_bytes", flag "max-message-bytes", env "MAX_MESSAGE_BYTES";
        /// Most requests in one batch.
        max_batch: usize = 100
            => key "max_batch", flag "max-batch", env "MAX_BATCH";
        /// Requests with an id waiting for a job's end, per connection; also
        /// the most status, cancel and fire-and-forget calls running at once
        /// per connection (more get -32005).
        max_in_flight: usize = 256
            => key "max_in_flight", flag "max-in-flight", env "MAX_IN_FLIGHT";
        /// Open WebSocket connections; more get HTTP 503.
        max_connections: usize = 100_000
            => key "max_connections", flag "max-connections", env "MAX_CONNECTIONS";
        /// Messages queued for a socket before the client counts as not
        /// reading and is cut off (close 4001).
        send_queue: usize = 1024
            => key "send_queue", flag "send-queue", env "SEND_QUEUE";
        /// Bytes queued for a socket before the client counts as not
        /// reading and is cut off (close 4001); one larger message still goes
        /// out alone.
        send_queue_bytes: usize = 4 * 1024 * 1024
            => key "send_queue_bytes", flag "send-queue-bytes", env "SEND_QUEUE_BYTES";
        /// A socket whose writes make no progress this long (a write blocks,
        /// or a ping stays unanswered) is cut off as not reading (4001),
        /// whatever it sends, seconds.
        write_stall_timeout: Duration = Duration::from_secs(30)
            => key "write_stall_timeout_secs", flag "write-stall-timeout-secs", env "WRITE_STALL_TIMEOUT_SECS";
        /// How long a close frame may take to reach a client (behind what
        /// was already written) before the connection is dropped, seconds.
        close_grace: Duration = Duration::from_secs(5)
            => key "close_grace_secs", flag "close-grace-secs", env "CLOSE_GRACE_SECS";
        /// Open WebSocket connections per user (`sub`); more get HTTP 429.
        max_connections_per_user: usize = 100
            => key "max_connections_per_user", flag "max-connections-per-user", env "MAX_CONNECTIONS_PER_USER";
        /// After a socket is closed for abuse (4400: garbage frames; 4429:
        /// flooding while rate limited), its user's new connections get
        /// HTTP 429 with Retry-After for this long, seconds; 0 = never.
        abuse_cooldown: Duration = Duration::from_secs(30)
            => key "abuse_cooldown_secs", flag "abuse-cooldown-secs", env "ABUSE_COOLDOWN_SECS";
        /// Requests per second and burst per user (`sub`), RATE or
        /// RATE/BURST (burst defaults to twice the rate); 0 = no limit.
        user_rate: Rate = Rate { per_second: 200.0, burst: 400.0 }
            => key "user_rate", flag "rate-limit-user", env "RATE_LIMIT_USER";
        /// Requests per second and burst per client IP, RATE or RATE/BURST;
        /// 0 = no limit.
        ip_rate: Rate = Rate { per_second: 1000.0, burst: 2000.0 }
            => key "ip_rate", flag "rate-limit-ip", env "RATE_LIMIT_IP";
        /// Proxies (IPs or CIDR networks, comma-separated) whose
        /// X-Forwarded-For names the client for per-IP limits and logs.
        trusted_proxies: TrustedProxies = TrustedProxies::default()
            => key "trusted_proxies", flag "trusted-proxies", env "TRUSTED_PROXIES";
        /// Rate-limited requests in a row before the socket is closed
        /// (4429); 0 = never.
        rate_limit_close_after: u32 = 1000
            => key "rate_limit_close_after", flag "rate-limit-close-after", env "RATE_LIMIT_CLOSE_AFTER";
        /// Frames that carry no request (not JSON, too large, binary, no
        /// valid request in them) within `invalid_frames_window` before the
        /// socket is closed (4400), whatever valid frames come between them;
        /// 0 = never. Each is also charged to the rate limits.
        max_invalid_frames: u32 = 50
            => key "max_invalid_frames", flag "max-invalid-frames", env "MAX_INVALID_FRAMES";
        /// The window `max_invalid_frames` are counted in (a fixed window
        /// starting at the first such frame), seconds.
        invalid_frames_window: Duration = Duration::from_secs(10)
            => key "invalid_frames_window_secs", flag "invalid-frames-window-secs", env "INVALID_FRAMES_WINDOW_SECS";
        /// How long a call or `rpc.subscribe` waits for the notifier while
        /// Redis is unreachable (its pub/sub connection reconnecting with
        /// backoff) before it is answered -32004, seconds; a socket already
        /// watching a job keeps watching whatever this is. 0 = answer at the
        /// first failed reconnect attempt.
        watch_outage_wait: Duration = Duration::from_secs(10)
            => key "watch_outage_wait_secs", flag "watch-outage-wait-secs", env "WATCH_OUTAGE_WAIT_SECS";
        /// How often the server pings, seconds.
        ping_interval: Duration = Duration::from_secs(30)
            => key "ping_interval_secs", flag "ping-interval-secs", env "PING_INTERVAL_SECS";
        /// A socket silent this long (no frame, no pong) is closed (4000), seconds.
        idle_timeout: Duration = Duration::from_secs(75)
            => key "idle_timeout_secs", flag "idle-timeout-secs", env "IDLE_TIMEOUT_SECS";
        /// How long shutdown waits for sockets to close, seconds.
        shutdown_grace: Duration = Duration::from_secs(5)
            => key "shutdown_grace_secs", flag "shutdown-grace-secs", env "SHUTDOWN_GRACE_SECS";
    }

    /// What `/metrics` shows, where, and to whom.
    group metrics: MetricsSettings, args MetricsArgs {
        /// Distinct method labels beyond the built-ins and configured
        /// methods; later ones, and any longer than 64 bytes or outside
        /// `[A-Za-z0-9._:-]`, are counted as `other`.
        metrics_max_methods: usize = 64
            => key "max_methods", flag "metrics-max-methods", env "METRICS_MAX_METHODS";
        /// How long what a scrape reads from Redis (queue depth) is reused,
        /// seconds; concurrent scrapes share one read. 0 = read every time.
        metrics_cache: Duration = Duration::from_secs(1)
            => key "cache_secs", flag "metrics-cache-secs", env "METRICS_CACHE_SECS";
        /// Bearer token `/metrics` requires (`Authorization: Bearer ...`);
        /// unset: none (401 without it when set).
        metrics_token: String
            => key "token", flag "metrics-token", env "METRICS_TOKEN", arg(hide_env_values = true);
        /// Serve `/metrics` on this address (plain HTTP) instead of the
        /// main listener; unset: on the main listener.
        metrics_listen: SocketAddr
            => key "listen", flag "metrics-listen", env "METRICS_LISTEN";
    }

    /// Retention and clamps for submitted jobs.
    group jobs: JobPolicy, args JobArgs {
        /// `removeOnComplete: {age}`, seconds: results stay this long for
        /// re-attach and `rpc.status`.
        keep_completed_secs: i64 = 3600
            => key "keep_completed_secs", flag "keep-completed-secs", env "KEEP_COMPLETED_SECS";
        /// `removeOnFail: {age}`, seconds.
        keep_failed_secs: i64 = 3600
            => key "keep_failed_secs", flag "keep-failed-secs", env "KEEP_FAILED_SECS";
        /// Highest `attempts` a client may ask for.
        max_attempts: i64 = 25
            => key "max_attempts", flag "max-attempts", env "MAX_ATTEMPTS";
        /// Longest `delay`, ms.
        max_delay_ms: i64 = 7 * 24 * 3600 * 1000
            => key "max_delay_ms", flag "max-delay-ms", env "MAX_DELAY_MS";
        /// Longest backoff delay, ms.
        max_backoff_ms: i64 = 3600 * 1000
            => key "max_backoff_ms", flag "max-backoff-ms", env "MAX_BACKOFF_MS";
        /// Longest `timeout`, ms.
        max_timeout_ms: i64 = 24 * 3600 * 1000
            => key "max_timeout_ms", flag "max-timeout-ms", env "MAX_TIMEOUT_MS";
        /// Acknowledge a call only once this many Redis replicas have its
        /// job (`WAIT`), so a failover cannot lose it; 0: when the master
        /// has it (Redis replicates asynchronously).
        replica_acks: u32 = 0
            => key "replica_acks", flag "replica-acks", env "REPLICA_ACKS";
        /// How long a call waits for `replica_acks`, ms; after it the call
        /// fails with a retryable error (the job is on the master).
        replica_ack_timeout_ms: u64 = 1000
            => key "replica_ack_timeout_ms", flag "replica-ack-timeout-ms", env "REPLICA_ACK_TIMEOUT_MS";
    }
}
