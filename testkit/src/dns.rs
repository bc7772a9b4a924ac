use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, Query};
use tokio::net::UdpSocket;

/// What the server answers: a full response message for a request (id and question are
/// copied in), or raw bytes.
#[derive(Debug)]
pub enum Reply {
    /// This message, with the request's id and question.
    Message(Message),
    /// This message with the request's id, its question section kept as it is (an
    /// answer to some other question).
    OwnQuestion(Message),
    /// These bytes as they are.
    Raw(Vec<u8>),
    /// No answer.
    Silence,
}

/// A running DNS server.
#[derive(Debug)]
pub struct DnsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every question received, in order.
    pub queries: Arc<Mutex<Vec<Query>>>,
}

impl DnsServer {
    /// Start on `bind` (e.g. "127.0.0.1:0").
    pub async fn start<F>(bind: &str, answer: F) -> Self
    where
        F: Fn(&Query) -> Reply + Send + Sync + 'static,
    {
        let socket = UdpSocket::bind(bind).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&queries);
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = request.queries.first().cloned() else {
                    continue;
                };
                seen.lock().unwrap().push(query.clone());
                let bytes = match answer(&query) {
                    Reply::Message(mut m) => {
                        m.metadata.id = request.metadata.id;
                        m.metadata.message_type = MessageType::Response;
                        m.metadata.op_code = request.metadata.op_code;
                        m.queries = vec![query];
                        m.to_vec().unwrap()
                    }
                    Reply::OwnQuestion(mut m) => {
                        m.metadata.id = request.metadata.id;
                        m.metadata.message_type = MessageType::Response;
                        m.metadata.op_code = request.metadata.op_code;
                        m.to_vec().unwrap()
                    }
                    Reply::Raw(raw) => raw,
                    Reply::Silence => continue,
                };
                let _ = socket.send_to(&bytes, peer).await;
            }
        });
        DnsServer { addr, queries }
    }
}
