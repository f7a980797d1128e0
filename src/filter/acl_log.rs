//! The ACL log in Envoy's shared data: one log for every worker's
//! connections (`ACL LOG` on any connection shows them all), updated with
//! compare-and-swap so that concurrent workers do not lose entries.

use std::time::SystemTime;

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

use crate::acl::log::{AclLog, Entry, LogStore};

/// The shared-data key. Shared data belongs to the VM id, so filters with
/// their own `vm_id` keep their own logs.
const KEY: &str = "envoy-redis-auth.acl-log";
/// Attempts before an update gives up (another worker kept winning).
const ATTEMPTS: usize = 8;

pub struct SharedLog;

impl SharedLog {
    /// Creates the log if no worker has yet: a first write without a
    /// version could otherwise race another worker's first write and lose
    /// an entry (an empty log written twice loses nothing).
    pub fn init() {
        if let Ok((None, _)) = hostcalls::get_shared_data(KEY) {
            if let Err(status) =
                hostcalls::set_shared_data(KEY, Some(&AclLog::default().encode()), None)
            {
                warn!("envoy-redis-auth: cannot create the ACL log: {status:?}");
            }
        }
    }

    fn load() -> (AclLog, Option<u32>) {
        match hostcalls::get_shared_data(KEY) {
            Ok((bytes, cas)) => {
                let log = bytes
                    .as_deref()
                    .and_then(AclLog::decode)
                    .unwrap_or_default();
                (log, cas)
            }
            Err(status) => {
                warn!("envoy-redis-auth: cannot read the ACL log: {status:?}");
                (AclLog::default(), None)
            }
        }
    }

    fn update(change: &dyn Fn(&mut AclLog)) {
        for _ in 0..ATTEMPTS {
            let (mut log, cas) = Self::load();
            change(&mut log);
            match hostcalls::set_shared_data(KEY, Some(&log.encode()), cas) {
                Ok(()) => return,
                Err(Status::CasMismatch) => continue,
                Err(status) => {
                    warn!("envoy-redis-auth: cannot update the ACL log: {status:?}");
                    return;
                }
            }
        }
        warn!("envoy-redis-auth: the ACL log is too busy; an entry was not recorded");
    }
}

impl LogStore for SharedLog {
    fn add(&self, entry: Entry) {
        Self::update(&|log| log.add(entry.clone()));
    }

    fn read(&self) -> AclLog {
        Self::load().0
    }

    fn reset(&self) {
        Self::update(&|log| log.reset());
    }

    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}
