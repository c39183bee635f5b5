//! What the `gateway` and `worker` binaries' `main` functions share: the
//! runtime, the log subscriber and the signal that stops them. A crate of its own so
//! that the gateway has it without the worker runtime (its `dev` feature
//! off) and the worker has it without the gateway.

/// Reads a boolean flag's value or environment variable the way people
/// write it: `1/0`, `true/false`, `yes/no`, `on/off`, in any case.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{text:?} is not a boolean (1/0, true/false, yes/no, on/off)"
        )),
    }
}

/// Installs the global `tracing` subscriber: `RUST_LOG` when set, else
/// `default_filter`; one JSON object per line when `json`, else text.
pub fn init_tracing(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (what `docker stop` and
/// Kubernetes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // no SIGTERM handler: Ctrl-C alone stops the process
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The tokio runtime for `threads` runtime threads: 0, one per core; 1,
/// the scheduler made for one thread, without the work-stealing machinery
/// (BENCHMARKS.md, "Runtime threads").
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::parse_bool;
    use tokio::runtime::{Handle, RuntimeFlavor};

    #[test]
    fn booleans_accept_what_people_type() {
        for yes in ["1", "true", "TRUE", "yes", "Yes", "on", "ON", " true "] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["0", "false", "False", "no", "NO", "off", "Off"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        for bad in ["", "2", "y", "truthy"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn one_thread_is_the_current_thread_scheduler_and_more_are_not() {
        let flavor = |threads| {
            super::runtime(threads)
                .unwrap()
                .block_on(async { Handle::current().runtime_flavor() })
        };
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(2), RuntimeFlavor::MultiThread);
        assert_eq!(flavor(0), RuntimeFlavor::MultiThread);
    }
}
