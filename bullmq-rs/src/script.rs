//! Our Lua scripts (from `lua/commands`, resolved by `build.rs`) and how they
//! are called: EVALSHA first, and on NOSCRIPT (a restarted or flushed Redis)
//! SCRIPT LOAD and one more EVALSHA.

use redis::aio::ConnectionLike;
use redis::{FromRedisValue, ToRedisArgs};

use crate::error::Result;

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

    /// Runs the script, loading it first if this Redis does not know it.
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
                    "script not cached by redis; loading it"
                );
                let _: String = redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(self.script.body)
                    .query_async(con)
                    .await?;
                Ok(self.cmd.query_async(con).await?)
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
}
