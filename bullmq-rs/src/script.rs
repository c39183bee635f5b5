//! Our Lua scripts (from `lua/commands`, resolved by `build.rs`) and how they
//! are called: EVALSHA first, and on NOSCRIPT (a restarted or flushed Redis,
//! a new cluster node) the same call as EVAL with the body, which caches it.

use redis::aio::ConnectionLike;
use redis::{FromRedisValue, ToRedisArgs};

use crate::connection::ReplicaAcks;
use crate::error::{Error, Result};

/// One resolved command script.
#[derive(Debug)]
pub(crate) struct ScriptSource {
    /// File name without the key count, e.g. `finishJobs`.
    pub(crate) name: &'static str,
    /// How many of the arguments are KEYS (the number after the dash).
    pub(crate) num_keys: usize,
    /// The script with its includes inlined.
    pub(crate) body: &'static str,
    /// SHA1 of `body`, what EVALSHA sends.
    pub(crate) sha: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/scripts.rs"));

impl ScriptSource {
    /// Starts an invocation; add exactly `num_keys` keys, then the arguments.
    pub(crate) fn call(&'static self) -> Invocation {
        // sized for the keys and a typical call's arguments, so that building
        // the command does not regrow its buffers argument by argument
        let mut cmd = redis::Cmd::with_capacity(self.num_keys + 24, 1024);
        cmd.arg("EVALSHA").arg(self.sha).arg(self.num_keys);
        Invocation {
            script: self,
            cmd,
            keys: 0,
        }
    }
}

/// A script call being built.
pub(crate) struct Invocation {
    script: &'static ScriptSource,
    cmd: redis::Cmd,
    keys: usize,
}

impl Invocation {
    pub(crate) fn key<T: ToRedisArgs>(mut self, key: T) -> Self {
        self.cmd.arg(key);
        self.keys += 1;
        self
    }

    pub(crate) fn keys<T: ToRedisArgs>(mut self, keys: impl IntoIterator<Item = T>) -> Self {
        for key in keys {
            self.cmd.arg(key);
            self.keys += 1;
        }
        self
    }

    pub(crate) fn arg<T: ToRedisArgs>(mut self, arg: T) -> Self {
        self.cmd.arg(arg);
        self
    }

    /// Appends to an invocation in place (for loops over a batch).
    pub(crate) fn push_arg<T: ToRedisArgs>(&mut self, arg: T) {
        self.cmd.arg(arg);
    }

    /// The `EVALSHA` command, to send in a pipeline; a NOSCRIPT reply is
    /// then the caller's to handle (`invoke` handles it itself).
    pub(crate) fn into_cmd(self) -> redis::Cmd {
        self.cmd
    }

    /// The same call as `EVAL <body>` instead of `EVALSHA <sha>`.
    fn with_body(&self) -> redis::Cmd {
        let mut cmd = redis::Cmd::with_capacity(self.script.num_keys + 24, 1024);
        cmd.arg("EVAL").arg(self.script.body);
        for arg in self.cmd.args_iter().skip(2) {
            if let redis::Arg::Simple(bytes) = arg {
                cmd.arg(bytes);
            }
        }
        cmd
    }

    /// Runs the script and `WAIT`s, in one pipeline on `con`, until
    /// `acks.replicas` replicas have its writes; fails with
    /// [`Error::NotReplicated`] when fewer confirm within `acks.timeout`.
    pub(crate) async fn invoke_replicated<T: FromRedisValue, C: ConnectionLike>(
        self,
        con: &mut C,
        acks: ReplicaAcks,
    ) -> Result<T> {
        let with_wait = |cmd: redis::Cmd| {
            let mut pipe = redis::pipe();
            pipe.add_command(cmd)
                .cmd("WAIT")
                .arg(acks.replicas)
                .arg(acks.timeout.as_millis() as u64);
            pipe
        };
        let reply: redis::RedisResult<(T, u32)> =
            with_wait(self.cmd.clone()).query_async(con).await;
        let (value, acked) = match reply {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                with_wait(self.with_body()).query_async(con).await?
            }
            other => other?,
        };
        if acked < acks.replicas {
            return Err(Error::NotReplicated {
                acked,
                wanted: acks.replicas,
            });
        }
        Ok(value)
    }

    /// Runs the script, sending its body if this Redis does not know it.
    pub(crate) async fn invoke<T: FromRedisValue, C: ConnectionLike>(
        self,
        con: &mut C,
    ) -> Result<T> {
        debug_assert_eq!(
            self.keys, self.script.num_keys,
            "{} takes {} keys",
            self.script.name, self.script.num_keys
        );
        match self.cmd.query_async(con).await {
            Ok(v) => Ok(v),
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                tracing::debug!(
                    script = self.script.name,
                    "script not cached by redis; sending its body"
                );
                // EVAL runs it and caches it for the next EVALSHA, on the
                // very node the keys route to (on a cluster, SCRIPT LOAD
                // would go to every node, and fail while one is down).
                Ok(self.with_body().query_async(con).await?)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_resolved_and_hashed() {
        for s in [
            &ADD_JOBS,
            &FETCH_JOBS,
            &FINISH_JOBS,
            &MOVE_STALLED_JOBS_TO_WAIT,
        ] {
            assert!(
                !s.body.contains("@include"),
                "{} has an unresolved include",
                s.name
            );
            assert_eq!(
                s.sha,
                sha1_smol::Sha1::from(s.body.as_bytes())
                    .digest()
                    .to_string()
            );
            assert_eq!(s.sha.len(), 40);
        }
        // each include is emitted once even when several includes use it
        assert_eq!(
            FINISH_JOBS
                .body
                .matches("local function priorityScore")
                .count(),
            1
        );
        assert_eq!(FINISH_JOBS.num_keys, 12);
    }

    #[test]
    fn encodes_evalsha_with_key_count() {
        let inv = UPDATE_DATA.call().key("bull:Q:1").arg("{}");
        let packed = inv.cmd.get_packed_command();
        let text = String::from_utf8_lossy(&packed);
        assert!(text.starts_with("*5\r\n$7\r\nEVALSHA\r\n$40\r\n"), "{text}");
        assert!(
            text.ends_with("$1\r\n1\r\n$8\r\nbull:Q:1\r\n$2\r\n{}\r\n"),
            "{text}"
        );
    }

    #[test]
    fn the_fallback_sends_the_body_with_the_same_keys_and_arguments() {
        let inv = UPDATE_DATA.call().key("bull:Q:1").arg("{}");
        let packed = inv.with_body().get_packed_command();
        let text = String::from_utf8_lossy(&packed);
        let body = UPDATE_DATA.body;
        assert!(
            text.starts_with(&format!(
                "*5\r\n$4\r\nEVAL\r\n${}\r\n{body}\r\n",
                body.len()
            )),
            "{text}"
        );
        assert!(
            text.ends_with("$1\r\n1\r\n$8\r\nbull:Q:1\r\n$2\r\n{}\r\n"),
            "{text}"
        );
    }
}
