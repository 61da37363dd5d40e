//! The drones behind a leader over HTTP: `GET /api/v1/drones`, and the
//! per-pool lines of `/metrics`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::transport::redis::{DroneStatus, RedisDispatcher};

/// How long Redis may take to say what it knows of the drones.
const LOOKUP: Duration = Duration::from_secs(3);

pub(super) async fn drones(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let Some(dispatcher) = &state.dispatcher else {
        return Ok(Json(json!({"mode": "embedded", "drones": [], "pools": []})));
    };
    let unavailable =
        |e: String| ApiError::other(StatusCode::SERVICE_UNAVAILABLE, format!("redis: {e}"));
    let (drones, pools) = tokio::time::timeout(LOOKUP, async {
        Ok::<_, crate::transport::redis::RedisError>((
            dispatcher.drones().await?,
            dispatcher.pools().await?,
        ))
    })
    .await
    .map_err(|_| unavailable(format!("no answer within {LOOKUP:?}")))?
    .map_err(|e| unavailable(e.to_string()))?;
    Ok(Json(json!({
        "mode": "distributed",
        "drones": drones.iter().map(drone).collect::<Vec<_>>(),
        "pools": pools,
    })))
}

/// A drone as JSON: its last heartbeat (null fields once it expired) and
/// whether it is alive.
fn drone(status: &DroneStatus) -> Value {
    match &status.info {
        Some(info) => json!({
            "id": status.id,
            "alive": status.alive,
            "host": info.host,
            "pid": info.pid,
            "pools": info.pools,
            "concurrency": info.concurrency,
            "running": info.running,
            "finished": info.finished,
            "started_at": info.started_at,
            "last_seen": info.last_seen,
            "version": info.version,
        }),
        None => json!({
            "id": status.id,
            "alive": status.alive,
            "host": null,
            "pid": null,
            "pools": [],
            "concurrency": null,
            "running": null,
            "finished": null,
            "started_at": null,
            "last_seen": null,
            "version": null,
        }),
    }
}

/// The per-pool metrics of a leader, or a comment saying why there are none.
pub(super) async fn pool_metrics(dispatcher: &RedisDispatcher) -> String {
    match tokio::time::timeout(LOOKUP, dispatcher.pools()).await {
        Ok(Ok(pools)) => crate::runs::render_pools(&pools),
        Ok(Err(e)) => format!("# pool metrics unavailable: {e}\n"),
        Err(_) => format!("# pool metrics unavailable: Redis did not answer within {LOOKUP:?}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::redis::PoolStatus;

    #[test]
    fn a_drone_whose_heartbeat_expired_has_only_its_id() {
        let value = drone(&DroneStatus {
            id: "d-1".into(),
            alive: false,
            info: None,
        });
        assert_eq!(value["id"], "d-1");
        assert_eq!(value["alive"], false);
        assert!(value["last_seen"].is_null());
        assert_eq!(value["pools"], json!([]));
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
