//! Job ids the gateway hands out, and why they carry their owner.
//!
//! A gateway job id is `<service>.<owner>.<key>`:
//! - `service` is the BullMQ queue, so `rpc.status {jobId}` finds the job
//!   without a lookup;
//! - `owner` is 20 hex digits of SHA-1 of the token's `sub` (80 bits), so
//!   ownership is part of the id: a request about an id whose owner part is
//!   not the caller's is answered exactly like an unknown id, without
//!   touching Redis, on any gateway instance;
//! - `key` is the client's `jobId` (its idempotency key: the same user,
//!   service and key always name the same BullMQ job, so resending never
//!   enqueues twice), or a random UUID when the client gave none.
//!
//! The id is globally unique, so the PRD's channel `job:{jobId}` is
//! unambiguous. BullMQ's rules hold: no `:`, never integer-like.

use std::fmt;

/// Longest client `jobId` accepted.
pub const MAX_CLIENT_KEY_LEN: usize = 128;
const OWNER_LEN: usize = 20;

/// The owner part of a job id, derived from the user's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(String);

impl Owner {
    /// The owner tag of a user.
    pub fn of(sub: &str) -> Self {
        let digest = sha1_smol::Sha1::from(sub.as_bytes()).digest().to_string();
        Owner(digest[..OWNER_LEN].to_string())
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A job the gateway submitted: its queue and BullMQ id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobRef {
    /// The BullMQ queue (the service).
    pub queue: String,
    /// The BullMQ job id, `<service>.<owner>.<key>`.
    pub id: String,
}

/// Why a client `jobId` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty or longer than [`MAX_CLIENT_KEY_LEN`].
    #[error("jobId must have 1 to {MAX_CLIENT_KEY_LEN} characters")]
    Length,
    /// A character outside `A-Z a-z 0-9 - _ . ~`.
    #[error("jobId may only contain letters, digits, '-', '_', '.' and '~'")]
    Charset,
}

/// Checks a client idempotency key.
pub fn validate_client_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() || key.len() > MAX_CLIENT_KEY_LEN {
        return Err(KeyError::Length);
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    {
        return Err(KeyError::Charset);
    }
    Ok(())
}

impl JobRef {
    /// The job a user's call creates: with the client's key (checked), or a
    /// fresh random one.
    pub fn for_call(
        service: &str,
        owner: &Owner,
        client_key: Option<&str>,
    ) -> Result<Self, KeyError> {
        // the id is built in one allocation, the random key on the stack
        let mut random = uuid::Uuid::encode_buffer();
        let key = match client_key {
            Some(k) => {
                validate_client_key(k)?;
                k
            }
            None => &*uuid::Uuid::new_v4().simple().encode_lower(&mut random),
        };
        let owner = owner.as_str();
        let mut id = String::with_capacity(service.len() + owner.len() + key.len() + 2);
        for part in [service, ".", owner, ".", key] {
            id.push_str(part);
        }
        Ok(JobRef {
            queue: service.to_string(),
            id,
        })
    }

    /// Reads a job id a client sent back, if it is well-formed and belongs
    /// to `owner`; `None` otherwise (then it must be treated as unknown).
    pub fn owned_by(job_id: &str, owner: &Owner) -> Option<Self> {
        let mut parts = job_id.splitn(3, '.');
        let (service, tag, key) = (parts.next()?, parts.next()?, parts.next()?);
        if service.is_empty() || tag != owner.as_str() || validate_client_key(key).is_err() {
            return None;
        }
        Some(JobRef {
            queue: service.to_string(),
            id: job_id.to_string(),
        })
    }

    /// The PRD's channel for custom publishers, `job:{jobId}`.
    pub fn custom_channel(&self) -> String {
        format!("job:{}", self.id)
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_service_owner_and_key() {
        let alice = Owner::of("alice");
        assert_eq!(alice.as_str().len(), 20);
        let j = JobRef::for_call("demo", &alice, Some("order-42")).unwrap();
        assert_eq!(j.id, format!("demo.{}.order-42", alice.as_str()));
        assert_eq!(j.queue, "demo");
        assert_eq!(JobRef::owned_by(&j.id, &alice), Some(j.clone()));
        assert_eq!(JobRef::owned_by(&j.id, &Owner::of("bob")), None);
        assert!(bullmq_wire::validate_job_id(&j.id).is_ok());
        assert_eq!(j.custom_channel(), format!("job:{}", j.id));
    }

    #[test]
    fn same_key_same_job_random_otherwise() {
        let o = Owner::of("u");
        assert_eq!(
            JobRef::for_call("s", &o, Some("k")),
            JobRef::for_call("s", &o, Some("k"))
        );
        assert_ne!(
            JobRef::for_call("s", &o, None),
            JobRef::for_call("s", &o, None)
        );
        assert_ne!(
            JobRef::for_call("s", &o, Some("k")),
            JobRef::for_call("t", &o, Some("k"))
        );
        // a random key is a simple UUID: 32 lowercase hex digits
        let random = JobRef::for_call("s", &o, None).unwrap();
        let key = random
            .id
            .strip_prefix(&format!("s.{}.", o.as_str()))
            .unwrap();
        assert_eq!(key.len(), 32, "{key}");
        assert!(key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(JobRef::owned_by(&random.id, &o), Some(random.clone()));
    }

    #[test]
    fn rejects_bad_keys_and_foreign_or_malformed_ids() {
        let o = Owner::of("u");
        assert_eq!(JobRef::for_call("s", &o, Some("")), Err(KeyError::Length));
        assert_eq!(
            JobRef::for_call("s", &o, Some("a:b")),
            Err(KeyError::Charset)
        );
        assert_eq!(
            JobRef::for_call("s", &o, Some(&"x".repeat(129))),
            Err(KeyError::Length)
        );
        for bad in [
            "",
            "42",
            "demo",
            "demo.x",
            ".abc.k",
            &format!("demo.{}.", o.as_str()),
            &format!("demo.{}.a:b", o.as_str()),
        ] {
            assert_eq!(JobRef::owned_by(bad, &o), None, "{bad}");
        }
    }
}
