//! The open-files limit (`RLIMIT_NOFILE`). Every client holds a socket, and
//! processes often start with a soft limit far below
//! `guard.max_connections` (recent Docker gives containers 1,024). At
//! start-up the soft limit is raised to the hard one, the most a process may
//! take without privileges, with a warning when the connections allowed
//! would still not fit under it.

use rlimit::Resource;

/// Files the bridge holds besides client sockets: its listeners, Kafka
/// connections (one per broker for each consumer, producer and admin
/// client), schema and secret files, epoll and timers. Generous.
const OTHER_FILES: u64 = 512;

/// Raises the soft limit to the hard one, logging what it did and warning
/// when `max_connections` does not fit.
pub fn raise_limit(max_connections: usize) {
    let (before, after) = match raise_soft_to_hard() {
        Ok(limits) => limits,
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-files limit");
            return;
        }
    };
    if after > before {
        tracing::info!(before, after, "raised the open-files limit");
    }
    if let Some(needed) = shortfall(after, max_connections) {
        tracing::warn!(
            limit = after,
            max_connections,
            needed,
            "guard.max_connections does not fit under the open-files limit: connections past it \
             fail to be accepted; raise the hard limit (LimitNOFILE=, `--ulimit nofile=`, \
             `ulimit -Hn`) or lower guard.max_connections"
        );
    }
}

/// The soft limit before and after raising it to the hard one.
fn raise_soft_to_hard() -> std::io::Result<(u64, u64)> {
    let (soft, hard) = Resource::NOFILE.get()?;
    if soft < hard {
        Resource::NOFILE.set(hard, hard)?;
    }
    Ok((soft, Resource::NOFILE.get_soft()?))
}

/// The files `max_connections` needs, when `limit` is below that.
fn shortfall(limit: u64, max_connections: usize) -> Option<u64> {
    let needed = max_connections as u64 + OTHER_FILES;
    (limit < needed).then_some(needed)
}

#[cfg(test)]
mod tests {
    use super::shortfall;

    #[test]
    fn connections_and_the_bridge_s_own_files_must_fit() {
        assert_eq!(shortfall(1024, 15_000), Some(15_512));
        assert_eq!(shortfall(15_512, 15_000), None);
        assert_eq!(shortfall(1024, 100), None);
    }
}
