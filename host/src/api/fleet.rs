//! The drones behind a leader over HTTP: `GET /api/v1/drones`, and the
//! per-pool lines of `/metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::backend::{self, Backend};
use crate::transport::redis::{DroneStatus, PoolStatus};

/// How long Redis may take to say what it knows of the drones.
const LOOKUP: Duration = Duration::from_secs(3);

/// The drones behind this leader, and each pool's queue.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct DroneList {
    mode: backend::Mode,
    drones: Vec<Drone>,
    pools: Vec<PoolStatus>,
}

/// A drone: its last heartbeat (null fields once that expired) and
/// whether it is alive.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(super) struct Drone {
    id: String,
    /// Its heartbeat has not expired.
    alive: bool,
    host: Option<String>,
    pid: Option<u32>,
    /// The pools it takes nodes from.
    pools: Vec<String>,
    /// How many attempts it runs at once at most.
    concurrency: Option<usize>,
    /// Attempts it runs now (its load).
    running: Option<usize>,
    /// Attempts it has finished since it started.
    finished: Option<u64>,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    last_seen: Option<String>,
    /// drover's version there.
    version: Option<String>,
}

pub(super) async fn drones(State(state): State<AppState>) -> Result<Json<DroneList>, ApiError> {
    let backend = state.runs.backend();
    if backend.mode() == backend::Mode::Embedded {
        return Ok(Json(DroneList {
            mode: backend::Mode::Embedded,
            drones: Vec::new(),
            pools: Vec::new(),
        }));
    }
    let unavailable = |e: String| ApiError::other(StatusCode::SERVICE_UNAVAILABLE, e);
    let (drones, pools) = tokio::time::timeout(LOOKUP, async {
        Ok::<_, crate::store::StoreError>((backend.drones().await?, backend.pools().await?))
    })
    .await
    .map_err(|_| unavailable(format!("redis: no answer within {LOOKUP:?}")))?
    .map_err(|e| unavailable(e.to_string()))?;
    Ok(Json(DroneList {
        mode: backend::Mode::Distributed,
        drones: drones.iter().map(drone).collect(),
        pools,
    }))
}

fn drone(status: &DroneStatus) -> Drone {
    let Some(info) = &status.info else {
        return Drone {
            id: status.id.clone(),
            alive: status.alive,
            ..Drone::default()
        };
    };
    Drone {
        id: status.id.clone(),
        alive: status.alive,
        host: Some(info.host.clone()),
        pid: Some(info.pid),
        pools: info.pools.clone(),
        concurrency: Some(info.concurrency),
        running: Some(info.running),
        finished: Some(info.finished),
        started_at: Some(info.started_at.clone()),
        last_seen: Some(info.last_seen.clone()),
        version: Some(info.version.clone()),
    }
}

/// The per-pool metrics of a leader, or a comment saying why there are none.
pub(super) async fn pool_metrics(backend: &dyn Backend) -> String {
    match tokio::time::timeout(LOOKUP, backend.pools()).await {
        Ok(Ok(pools)) => crate::runs::render_pools(&pools),
        Ok(Err(e)) => format!("# pool metrics unavailable: {e}\n"),
        Err(_) => format!("# pool metrics unavailable: Redis did not answer within {LOOKUP:?}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drone_whose_heartbeat_expired_has_only_its_id() {
        let value = drone(&DroneStatus {
            id: "d-1".into(),
            alive: false,
            info: None,
        });
        let value = serde_json::to_value(value).unwrap_or_default();
        assert_eq!(value["id"], "d-1");
        assert_eq!(value["alive"], false);
        assert!(value["last_seen"].is_null());
        assert_eq!(value["pools"], serde_json::json!([]));
    }

    #[test]
    fn pools_render_as_gauges() {
        let text = crate::runs::render_pools(&[PoolStatus {
            name: "gpu".into(),
            queued: 3,
            running: 2,
            drones: 1,
        }]);
        assert!(
            text.contains("drover_pool_queued{pool=\"gpu\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("drover_pool_running{pool=\"gpu\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("drover_pool_drones{pool=\"gpu\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE drover_pool_queued gauge"), "{text}");
    }
}
