//! `GET /api/cluster/nodes` (ours; TBMQ lists its service registry at `/api/app/service/info`
//! from Redis): the broker nodes this node hears on `tbmq.sys.service.info` and the executors it
//! hears on `tbmq.ie.uplink`.

use poem_openapi::{payload::Json, Object, OpenApi, Tags};

use super::{
    dto::ExecutorDto,
    error::{ApiResult, TokenErrors},
    State,
};
use crate::cluster::Node;

#[derive(Tags)]
enum Tag {
    /// Cluster.
    Cluster,
}

/// Cluster endpoints.
pub struct ClusterApi(pub State);

/// The cluster as one node sees it.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct ClusterDto {
    /// The node that answered.
    pub service_id: String,
    /// Broker nodes, by service id.
    pub nodes: Vec<NodeDto>,
    /// Integration executors, by service id.
    pub executors: Vec<ExecutorDto>,
}

/// A broker node.
#[derive(Debug, Object)]
#[oai(rename_all = "camelCase")]
pub struct NodeDto {
    /// Service id (`TB_SERVICE_ID`).
    pub service_id: String,
    /// `tbmq`.
    pub service_type: String,
    /// When it started (ms, its clock).
    pub start_time: i64,
    /// Its last heartbeat (ms, its clock).
    pub last_heartbeat: i64,
    /// Heard from within three heartbeat intervals (`TB_SERVICE_INFO_INTERVAL_MS`).
    pub alive: bool,
    /// Its version.
    pub version: String,
    /// Where it listens, as URLs (`http://`, `mqtt://`, `mqtts://`, `ws://`).
    pub listeners: Vec<String>,
    /// The node that answered.
    pub this_node: bool,
}

impl From<Node> for NodeDto {
    fn from(n: Node) -> Self {
        NodeDto {
            service_id: n.service_id,
            service_type: crate::cluster::BROKER_SERVICE_TYPE.into(),
            start_time: n.start_time,
            last_heartbeat: n.last_heartbeat,
            alive: n.alive,
            version: n.version,
            listeners: n.listeners,
            this_node: n.this_node,
        }
    }
}

#[OpenApi(tag = "Tag::Cluster")]
impl ClusterApi {
    /// The broker nodes this node hears (with their last heartbeat and whether they are alive)
    /// and the integration executors it hears (with the types they serve). Ours: TBMQ has no
    /// such endpoint on the queue.
    #[oai(path = "/cluster/nodes", method = "get", operation_id = "getClusterNodes")]
    async fn nodes(&self) -> ApiResult<Json<ClusterDto>, TokenErrors> {
        let now = trib_queue::now_ms();
        let cluster = &self.0.cluster;
        Ok(Json(ClusterDto {
            service_id: self.0.service.service_id().to_string(),
            nodes: cluster.nodes(now).into_iter().map(Into::into).collect(),
            executors: cluster.executors().all(now).into_iter().map(Into::into).collect(),
        }))
    }
}
