//! The relay's door: only signers in the roster get a TLS connection, and a connected
//! signer cannot push an envelope into a session it is not part of, nor claim another
//! sender. The server runs in process; clients speak the real frames over real TLS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use coffer_net::envelope::{Envelope, ProtocolKind};
use coffer_net::frames::{read_frame, write_frame, ToServer, ToSigner};
use coffer_net::roster::{Roster, SignedRoster};
use coffer_net::{tls, Identity};
use coffer_proto::ids::{PartyIndex, SessionId};
use coffer_proto::message::Message;
use coffer_server::ServerConfig;

struct Setup {
    dir: PathBuf,
    signers: Vec<Identity>,
    server_key: coffer_net::NodeKey,
}

fn setup() -> Setup {
    let mut b = [0u8; 6];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    let dir = std::env::temp_dir().join(format!("coffer-relay-{}", hex::encode(b)));
    let server_key = coffer_server::init(&dir).unwrap();
    let signers: Vec<Identity> = (0..3)
        .map(|i| Identity::generate(&format!("s{i}")))
        .collect();
    let admin = Identity::generate("admin");
    let roster = Roster {
        version: 1,
        signers: signers.iter().map(|s| s.public()).collect(),
        admins: vec![admin.node_key()],
        admin_threshold: 1,
        server: server_key,
        dev_mode: true,
    };
    let signed = SignedRoster {
        signatures: vec![roster.sign_as_admin(&admin).unwrap()],
        roster,
    };
    std::fs::write(
        coffer_server::roster_path(&dir),
        serde_json::to_string(&signed).unwrap(),
    )
    .unwrap();
    Setup {
        dir,
        signers,
        server_key,
    }
}

async fn connect(
    addr: SocketAddr,
    me: &Identity,
    server_key: coffer_net::NodeKey,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let config = tls::client_config(me.signing_key(), server_key).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(tls::server_name(), tcp)
        .await
}

#[tokio::test]
async fn unknown_identities_are_refused_and_foreign_envelopes_are_not_relayed() {
    let s = setup();
    let config = ServerConfig {
        data_dir: s.dir.clone(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        signer_listen: "127.0.0.1:0".parse().unwrap(),
        deadlines: Default::default(),
        presign_pool: 0,
        database_url: None,
        rate_limits: Default::default(),
        checkpoint_every: coffer_server::DEFAULT_CHECKPOINT_EVERY,
        alerts: coffer_server::alerts::AlertConfig::standard(),
        webhooks: Default::default(),
    };
    let running = coffer_server::start(&config).await.unwrap();
    let addr = running.signer_addr;

    // A stranger's TLS handshake fails, or the connection is closed before any frame.
    let stranger = Identity::generate("stranger");
    if let Ok(mut conn) = connect(addr, &stranger, s.server_key).await {
        let r = tokio::time::timeout(Duration::from_secs(5), read_frame::<_, ToSigner>(&mut conn))
            .await
            .unwrap();
        assert!(!matches!(r, Ok(Some(_))), "a stranger got a frame");
    }
    // A signer pinned to another server key refuses the server.
    let impostor_key = Identity::generate("impostor").node_key();
    assert!(connect(addr, &s.signers[0], impostor_key).await.is_err());

    // Two enrolled signers connect.
    let mut a = connect(addr, &s.signers[0], s.server_key).await.unwrap();
    let mut b = connect(addr, &s.signers[1], s.server_key).await.unwrap();
    write_frame(&mut a, &ToServer::Status(Default::default()))
        .await
        .unwrap();
    write_frame(&mut b, &ToServer::Status(Default::default()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(running.hub.is_connected(&s.signers[0].node_key()));
    assert!(!running.hub.is_connected(&stranger.node_key()));

    // Signer A sends an envelope for a session that does not exist: nothing reaches B.
    let m = Message {
        session: SessionId::random(),
        sender: PartyIndex::unchecked(0),
        recipient: None,
        round: 1,
        payload: b"hello".to_vec(),
    };
    let env = Envelope::seal(&s.signers[0], "k-1", ProtocolKind::Sign, &m, None).unwrap();
    write_frame(&mut a, &ToServer::Relay(env)).await.unwrap();
    // A session the hub knows, with A and B; A claims to be C in the header: not relayed.
    let session = SessionId::random();
    running.hub.open_session(
        session,
        vec![(0, s.signers[0].node_key()), (1, s.signers[1].node_key())],
    );
    let m = Message { session, ..m };
    let forged = Envelope::seal(&s.signers[2], "k-1", ProtocolKind::Sign, &m, None).unwrap();
    write_frame(&mut a, &ToServer::Relay(forged)).await.unwrap();
    let got = tokio::time::timeout(
        Duration::from_millis(800),
        read_frame::<_, ToSigner>(&mut b),
    )
    .await;
    assert!(
        got.is_err(),
        "B received a frame it should not have: {got:?}"
    );
    // A genuine envelope from A in that session does reach B.
    let genuine = Envelope::seal(&s.signers[0], "k-1", ProtocolKind::Sign, &m, None).unwrap();
    write_frame(&mut a, &ToServer::Relay(genuine.clone()))
        .await
        .unwrap();
    let got: ToSigner = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut b))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match got {
        ToSigner::Relay(e) => assert_eq!(e.to_bytes(), genuine.to_bytes()),
        other => panic!("unexpected {other:?}"),
    }
    running.stop();
    let _ = std::fs::remove_dir_all(&s.dir);
}
