//! The labels and names of a project's engine objects, as docker-compose
//! 1.29 writes them (Compose v2 reads the same labels).

/// The project a container, network or volume belongs to.
pub const PROJECT: &str = "com.docker.compose.project";
/// The service a container runs.
pub const SERVICE: &str = "com.docker.compose.service";
/// The replica number, from 1.
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// Hash of the service configuration the container was created from.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// `True` for `run` containers, `False` for service replicas.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// The project directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The compose files, comma-separated.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// The tool version that created the object.
pub const VERSION: &str = "com.docker.compose.version";
/// The network key in the compose file.
pub const NETWORK: &str = "com.docker.compose.network";
/// The volume key in the compose file.
pub const VOLUME: &str = "com.docker.compose.volume";
/// The random part of a `run` container's name.
pub const SLUG: &str = "com.docker.compose.slug";

/// The compose version written to [`VERSION`]: docker-compose 1.29's, whose
/// naming and labels berth follows.
pub const COMPOSE_VERSION: &str = "1.29.2";

/// A replica's container name: `<project>_<service>_<n>` (1.29's form).
pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!(
        "{}_{service}_{number}",
        project.trim_start_matches(['-', '_'])
    )
}

/// A one-off (`run`) container's name: `<project>_<service>_run_<slug12>`.
pub fn run_container_name(project: &str, service: &str, slug: &str) -> String {
    let short: String = slug.chars().take(12).collect();
    format!(
        "{}_{service}_run_{short}",
        project.trim_start_matches(['-', '_'])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_compose_1_29() {
        assert_eq!(container_name("app", "web", 2), "app_web_2");
        assert_eq!(container_name("_app", "web", 1), "app_web_1");
        assert_eq!(
            run_container_name("app", "web", "0123456789abcdef"),
            "app_web_run_0123456789ab"
        );
    }
}
