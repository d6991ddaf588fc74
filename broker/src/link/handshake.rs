//! The CONNECT / CONNACK exchange: protocol detection, client id, authentication, limits,
//! session attach and the CONNACK with the broker's MQTT 5 properties.
//!
//! Refusals are answered with the most precise CONNACK code the client's protocol level has, then
//! the connection is closed. A first packet that is not a CONNECT is closed without a reply.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Context, Established, Io};
use crate::acl::{Authorization, Principal};
use crate::auth::{AuthDecision, AuthRequest, ClientCertificate, TopicRules};
use crate::message::{now_ms, PublishedMessage};
use crate::protocol::{self, packets, reason, Codec, ConnectRequest, HandshakeError, ProtocolVersion, QoS};
use crate::router::topic;
use crate::sessions::Will;

use packets::ConnectReturnCode as Code;

/// Reads the CONNECT and answers it; `None` if the connection was refused or closed.
pub(super) async fn accept<S: AsyncRead + AsyncWrite>(
    io: &mut Io<S>,
    inbuf: &mut BytesMut,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    max_packet: usize,
    ctx: &Context,
) -> Option<Established> {
    let deadline = tokio::time::Instant::now() + ctx.settings.connect_timeout;
    let req = loop {
        match protocol::decode_connect(inbuf, max_packet) {
            Ok(Some(req)) => break req,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(%peer, error = %e, "Connection refused at CONNECT.");
                refuse_undecodable(io, &e).await;
                return None;
            }
        }
        inbuf.reserve(4096);
        match tokio::time::timeout_at(deadline, io.reader.read_buf(inbuf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => {}
            Err(_) => {
                tracing::debug!(%peer, "No CONNECT before the connect timeout.");
                return None;
            }
        }
    };
    let codec = Codec::new(req.version, max_packet);
    match establish(req, codec, peer, certificate, max_packet, ctx).await {
        Ok(est) => Some(est),
        Err(code) => {
            tracing::debug!(%peer, code = ?code, "Connection refused.");
            match code {
                Code::BadUserNamePassword => ctx.metrics().auth_failed(true),
                Code::NotAuthorized => ctx.metrics().auth_failed(false),
                _ => {}
            }
            let mut out = BytesMut::new();
            let connack = packets::ConnAck { session_present: false, code, properties: None };
            let _ = codec.encode(&packets::Packet::ConnAck(connack), &mut out);
            let _ = io.writer.write_all_buf(&mut out).await;
            None
        }
    }
}

async fn refuse_undecodable<S: AsyncRead + AsyncWrite>(io: &mut Io<S>, e: &HandshakeError) {
    let reply: &[u8] = match e {
        // CONNACK with 3.1.1 return code 1, "unacceptable protocol version".
        HandshakeError::UnsupportedProtocol { .. } => {
            &[reason::CONNACK_HEADER, 0x02, 0x00, reason::V3_UNACCEPTABLE_PROTOCOL_VERSION]
        }
        // MQTT 5 CONNACK with reason "malformed packet", no properties.
        HandshakeError::Malformed { version: ProtocolVersion::V5, .. } => {
            &[reason::CONNACK_HEADER, 0x03, 0x00, reason::MALFORMED_PACKET, 0x00]
        }
        _ => return,
    };
    let _ = io.writer.write_all(reply).await;
}

async fn establish(
    req: ConnectRequest,
    codec: Codec,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    max_packet: usize,
    ctx: &Context,
) -> Result<Established, Code> {
    let s = &ctx.settings;
    let version = req.version;
    let v5 = version.is_v5();
    let props = req.connect.properties.as_ref();
    let (client_id, assigned) = client_id(&req, s.max_client_id_v31)?;
    if props.is_some_and(|p| p.receive_maximum == Some(0) || p.max_packet_size == Some(0)) {
        return Err(Code::ProtocolError);
    }
    let will = req.will.as_ref().map(|w| build_will(w, &client_id, s.retain_available)).transpose()?;
    let rules = authenticate(&req, &client_id, peer, certificate.clone(), ctx).await?;
    let principal = match (&certificate, &req.login) {
        (Some(cert), _) => Principal::Certificate(&cert.cn),
        (None, Some(login)) => Principal::User(&login.username),
        (None, None) => Principal::Anonymous,
    };
    let authz = Authorization::new(principal, &client_id, ctx.settings.acl.as_deref()).with_rules(rules);
    if will.as_ref().is_some_and(|will| !authz.can_publish(&will.msg.topic)) {
        return Err(Code::NotAuthorized);
    }
    let slot = ctx.connections.acquire(s.max_connections).ok_or(Code::QuotaExceeded)?;

    let requested_expiry = match props {
        Some(p) if v5 => p.session_expiry_interval.unwrap_or(0),
        None if v5 => 0,
        _ if req.connect.clean_start => 0,
        _ => s.max_session_expiry,
    };
    let expiry = requested_expiry.min(s.max_session_expiry);
    let (keep_alive, server_keep_alive) = keep_alive(v5, req.connect.keep_alive, s.max_keep_alive);
    let client_id: Arc<str> = client_id.into();
    // From here another node's older word on this client takes nothing over on this node.
    ctx.router.session_connecting(&client_id);
    let mut attached = ctx.sessions.attach(&ctx.router, &client_id, req.connect.clean_start, expiry, &ctx.limits);
    // Another node may hold the session: it is resumed here with what that node last wrote.
    let resume = !attached.present && !req.connect.clean_start;
    attached.present |= ctx.router.attach_local(&attached.session, resume);
    // A resumed session with kept messages and nothing left to send: they are delivered.
    {
        let mut st = attached.session.state.lock();
        if st.take_drained() {
            ctx.router.session_drained(&client_id);
        }
    }
    let out_window = if v5 {
        props.and_then(|p| p.receive_maximum).unwrap_or(u16::MAX).min(s.max_in_flight)
    } else {
        s.mqtt3x_receive_max
    };
    let client_max_packet = props.and_then(|p| p.max_packet_size).map_or(usize::MAX, |m| m as usize);

    let properties = v5.then(|| packets::ConnAckProperties {
        session_expiry_interval: (expiry != requested_expiry).then_some(expiry),
        receive_max: Some(s.max_in_flight),
        max_qos: None,
        retain_available: (!s.retain_available).then_some(0),
        max_packet_size: u32::try_from(max_packet).ok(),
        assigned_client_identifier: assigned,
        topic_alias_max: Some(s.topic_alias_max),
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    });
    let connack = packets::ConnAck { session_present: attached.present, code: Code::Success, properties };
    let mut outbuf = BytesMut::with_capacity(4096);
    codec.encode(&packets::Packet::ConnAck(connack), &mut outbuf).map_err(|_| Code::ImplementationSpecificError)?;
    Ok(Established {
        codec,
        client_id,
        session: attached.session,
        conn_id: attached.conn_id,
        present: attached.present,
        kick: attached.kick,
        keep_alive: (keep_alive > 0).then(|| Duration::from_secs(u64::from(keep_alive))),
        will,
        out_window: usize::from(out_window),
        client_max_packet,
        alias_max: s.topic_alias_max,
        // Broker-to-client aliases: as many as the client allows, when aliases are enabled at all.
        out_alias_max: if s.topic_alias_max > 0 { props.and_then(|p| p.topic_alias_max).unwrap_or(0) } else { 0 },
        receive_max_in: usize::from(s.max_in_flight),
        connect_expiry: requested_expiry,
        outbuf,
        slot,
        authz,
    })
}

/// The client id to use, and the one to announce if the broker assigned it (MQTT 5).
fn client_id(req: &ConnectRequest, max_v31: usize) -> Result<(String, Option<String>), Code> {
    let id = &req.connect.client_id;
    if id.is_empty() {
        if !req.version.is_v5() && !req.connect.clean_start {
            return Err(Code::ClientIdentifierNotValid);
        }
        let generated = generate_client_id();
        let announce = req.version.is_v5().then(|| generated.clone());
        return Ok((generated, announce));
    }
    if req.version == ProtocolVersion::V31 && id.len() > max_v31 {
        return Err(Code::ClientIdentifierNotValid);
    }
    // MQTT forbids U+0000 in strings (1.5.4); in a client id it would also end the id early in
    // anything that reads it as a C string (logs, ACL patterns, other brokers in a bridge).
    if id.contains('\0') {
        return Err(Code::ClientIdentifierNotValid);
    }
    Ok((id.clone(), None))
}

fn generate_client_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("trib-{:x}-{n:x}", now_ms())
}

/// MQTT 5 clients asking for no keep alive or more than the maximum are told the maximum.
/// MQTT 3.x clients cannot be told, so their own value is enforced.
fn keep_alive(v5: bool, requested: u16, max: u16) -> (u16, Option<u16>) {
    if v5 && max > 0 && (requested == 0 || requested > max) {
        (max, Some(max))
    } else {
        (requested, None)
    }
}

/// Asks the authenticator; the topic rules of the credentials the client authenticated with.
async fn authenticate(
    req: &ConnectRequest,
    client_id: &str,
    peer: SocketAddr,
    certificate: Option<ClientCertificate>,
    ctx: &Context,
) -> Result<Option<Arc<TopicRules>>, Code> {
    let request = AuthRequest {
        certificate,
        client_id: client_id.to_owned(),
        username: req.login.as_ref().map(|l| l.username.clone()),
        password: req.login.as_ref().map(|l| l.password.clone().into_bytes()),
        peer,
    };
    match ctx.authenticator.authenticate(&request).await {
        AuthDecision::Allow => Ok(None),
        AuthDecision::AllowWith(rules) => Ok(Some(rules)),
        AuthDecision::BadCredentials => Err(Code::BadUserNamePassword),
        AuthDecision::NotAuthorized => Err(Code::NotAuthorized),
    }
}

fn build_will(w: &packets::LastWill, client_id: &str, retain_available: bool) -> Result<Will, Code> {
    let topic = std::str::from_utf8(&w.topic).map_err(|_| Code::TopicNameInvalid)?;
    topic::validate_topic_name(topic).map_err(|_| Code::TopicNameInvalid)?;
    if w.retain && !retain_available {
        return Err(Code::RetainNotSupported);
    }
    let p = w.properties.as_ref();
    let msg = PublishedMessage {
        topic: topic.to_owned(),
        payload: Bytes::clone(&w.message),
        qos: QoS::from_v5(w.qos),
        retain: w.retain,
        client_id: client_id.into(),
        user_properties: p.map(|p| p.user_properties.clone()).unwrap_or_default(),
        content_type: p.and_then(|p| p.content_type.clone()),
        correlation_data: p.and_then(|p| p.correlation_data.clone()),
        response_topic: p.and_then(|p| p.response_topic.clone()),
        message_expiry_interval: p.and_then(|p| p.message_expiry_interval),
        payload_format_indicator: p.and_then(|p| p.payload_format_indicator),
        received_at_ms: now_ms(),
    };
    Ok(Will { msg, delay: p.and_then(|p| p.delay_interval).unwrap_or(0) })
}
