//! Facts about network addresses that more than one client of the bridge
//! needs (the JWKS fetcher, the schema registry client). A leaf: imports
//! nothing of the crate.

/// Whether a configured URL (`auth.jwt.jwks_url`, `schemas.registry_url`)
/// stays on this machine: `localhost` or a loopback address.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}
