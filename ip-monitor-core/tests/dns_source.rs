//! DNS sources against a real DNS server on 127.0.0.1.
#![cfg(feature = "dns")]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use ip_monitor_core::{DnsIpSource, Family, IpSource, SourceError, SourceSet};
use ip_monitor_testkit::dns::{DnsServer, Reply};

fn answer(query: &hickory_proto::op::Query, data: RData) -> Reply {
    let mut m = Message::response(0, hickory_proto::op::OpCode::Query);
    let mut record = Record::from_rdata(query.name().clone(), 60, data);
    record.dns_class = query.query_class();
    m.add_answer(record);
    Reply::Message(m)
}

async fn ask(source: DnsIpSource, family: Family) -> Result<IpAddr, Arc<SourceError>> {
    let s: Arc<dyn IpSource> = Arc::new(source);
    SourceSet::new(vec![s])
        .timeout(Duration::from_secs(2))
        .probe(family)
        .await
        .unwrap()
        .result
        .unwrap()
}

#[tokio::test]
async fn opendns_a_and_aaaa() {
    let server = DnsServer::start("127.0.0.1:0", |q| match q.query_type() {
        RecordType::A => answer(q, RData::A(A(Ipv4Addr::new(81, 2, 69, 160)))),
        RecordType::AAAA => answer(
            q,
            RData::AAAA(AAAA("2606:4700:4700::1111".parse().unwrap())),
        ),
        _ => Reply::Silence,
    })
    .await;
    let got = ask(DnsIpSource::opendns().server_v4(server.addr), Family::V4)
        .await
        .unwrap();
    assert_eq!(got.to_string(), "81.2.69.160");
    let q = server.queries.lock().unwrap()[0].clone();
    assert_eq!(q.name().to_ascii(), "myip.opendns.com.");
    assert_eq!(
        (q.query_type(), q.query_class()),
        (RecordType::A, DNSClass::IN)
    );

    let server6 = DnsServer::start("[::1]:0", |q| match q.query_type() {
        RecordType::AAAA => answer(
            q,
            RData::AAAA(AAAA("2606:4700:4700::1111".parse().unwrap())),
        ),
        _ => Reply::Silence,
    })
    .await;
    let got = ask(DnsIpSource::opendns().server_v6(server6.addr), Family::V6)
        .await
        .unwrap();
    assert_eq!(got.to_string(), "2606:4700:4700::1111");
}

#[tokio::test]
async fn cloudflare_asks_chaos_txt() {
    let server = DnsServer::start("127.0.0.1:0", |q| {
        if q.query_class() == DNSClass::CH && q.query_type() == RecordType::TXT {
            answer(q, RData::TXT(TXT::new(vec!["81.2.69.160".into()])))
        } else {
            let mut m = Message::response(0, hickory_proto::op::OpCode::Query);
            m.metadata.response_code = ResponseCode::Refused;
            Reply::Message(m)
        }
    })
    .await;
    let got = ask(DnsIpSource::cloudflare().server_v4(server.addr), Family::V4)
        .await
        .unwrap();
    assert_eq!(got.to_string(), "81.2.69.160");
    assert_eq!(
        server.queries.lock().unwrap()[0].name().to_ascii(),
        "whoami.cloudflare."
    );
}

#[tokio::test]
async fn google_txt_skips_records_that_are_not_the_address() {
    let server = DnsServer::start("127.0.0.1:0", |q| {
        let mut m = Message::response(0, hickory_proto::op::OpCode::Query);
        for text in ["edns0-client-subnet 81.2.69.0/24", "81.2.69.160"] {
            m.add_answer(Record::from_rdata(
                q.name().clone(),
                60,
                RData::TXT(TXT::new(vec![text.into()])),
            ));
        }
        Reply::Message(m)
    })
    .await;
    let got = ask(DnsIpSource::google().server_v4(server.addr), Family::V4)
        .await
        .unwrap();
    assert_eq!(got.to_string(), "81.2.69.160");
    assert_eq!(
        server.queries.lock().unwrap()[0].name().to_ascii(),
        "o-o.myaddr.l.google.com."
    );
}

#[tokio::test]
async fn errors_garbage_and_private_answers_are_rejected() {
    let server = DnsServer::start("127.0.0.1:0", |q| {
        let mut m = Message::response(0, hickory_proto::op::OpCode::Query);
        m.metadata.response_code = ResponseCode::NXDomain;
        let _ = q;
        Reply::Message(m)
    })
    .await;
    let err = ask(DnsIpSource::opendns().server_v4(server.addr), Family::V4)
        .await
        .unwrap_err();
    assert!(matches!(*err, SourceError::Dns(_)), "{err:?}");

    let garbage = DnsServer::start("127.0.0.1:0", |q| {
        answer(q, RData::TXT(TXT::new(vec!["<html>".into()])))
    })
    .await;
    let err = ask(DnsIpSource::google().server_v4(garbage.addr), Family::V4)
        .await
        .unwrap_err();
    assert!(matches!(*err, SourceError::Invalid { .. }), "{err:?}");

    let private = DnsServer::start("127.0.0.1:0", |q| {
        answer(q, RData::A(A(Ipv4Addr::new(192, 168, 1, 1))))
    })
    .await;
    let err = ask(DnsIpSource::opendns().server_v4(private.addr), Family::V4)
        .await
        .unwrap_err();
    assert!(matches!(*err, SourceError::NonGlobal { .. }), "{err:?}");

    let noise = DnsServer::start("127.0.0.1:0", |_| Reply::Raw(vec![1, 2, 3])).await;
    let err = ask(DnsIpSource::opendns().server_v4(noise.addr), Family::V4)
        .await
        .unwrap_err();
    assert!(matches!(*err, SourceError::Timeout(_)), "{err:?}");
}

/// An answer is taken only for the question asked, from a record of that name and class
/// (RFC 5452): a reply to another question is a stray, and records of another owner name or
/// class are not the address.
#[tokio::test]
async fn answers_to_another_question_name_or_class_are_not_taken() {
    use hickory_proto::op::{OpCode, Query};
    use hickory_proto::rr::Name;
    let address = RData::A(A(Ipv4Addr::new(81, 2, 69, 160)));
    let other = Name::from_ascii("attacker.example.").unwrap();

    let question = DnsServer::start("127.0.0.1:0", {
        let (address, other) = (address.clone(), other.clone());
        move |_| {
            let mut m = Message::response(0, OpCode::Query);
            m.add_query(Query::query(other.clone(), RecordType::A));
            m.add_answer(Record::from_rdata(other.clone(), 60, address.clone()));
            Reply::OwnQuestion(m)
        }
    })
    .await;
    let err = ask(DnsIpSource::opendns().server_v4(question.addr), Family::V4)
        .await
        .unwrap_err();
    assert!(matches!(*err, SourceError::Timeout(_)), "{err:?}");

    let owner = DnsServer::start("127.0.0.1:0", {
        let (address, other) = (address.clone(), other.clone());
        move |_| {
            let mut m = Message::response(0, OpCode::Query);
            m.add_answer(Record::from_rdata(other.clone(), 60, address.clone()));
            Reply::Message(m)
        }
    })
    .await;
    let err = ask(DnsIpSource::opendns().server_v4(owner.addr), Family::V4)
        .await
        .unwrap_err();
    assert!(matches!(*err, SourceError::Dns(_)), "{err:?}");

    let class = DnsServer::start("127.0.0.1:0", {
        let address = address.clone();
        move |q| {
            let mut m = Message::response(0, OpCode::Query);
            let mut record = Record::from_rdata(q.name().clone(), 60, address.clone());
            record.dns_class = DNSClass::CH;
            m.add_answer(record);
            Reply::Message(m)
        }
    })
    .await;
    let err = ask(DnsIpSource::opendns().server_v4(class.addr), Family::V4)
        .await
        .unwrap_err();
    assert!(matches!(*err, SourceError::Dns(_)), "{err:?}");
}

#[tokio::test]
async fn a_v4_server_cannot_answer_v6() {
    let addr: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let source = DnsIpSource::opendns().server_v6(addr);
    let err = source.fetch(Family::V6).await.unwrap_err();
    assert!(matches!(err, SourceError::Unsupported { .. }), "{err:?}");
}
