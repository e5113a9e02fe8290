//! One download per image, whatever the number of subscriptions that want
//! it: two concurrent downloads of the same image from a server that
//! ignores Range (so a second writer would truncate the shared partial
//! file under the first) make one request and promote proven bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sha2::{Digest as _, Sha512};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use vmlisub::imagelist::ImageId;
use vmlisub::imagelist::{self, Sha512Hex};
use vmlisub::store::{ListKey, Namespace, SubscriptionName};
use vmlisub::subscription::{
    CoreConfig, DEFAULT_MAX_LIST_BYTES, Download, GoodList, Subscriptions, TransferSettings,
};
use vmlisub::transfer::TransferConfig;

/// Serves `body` for every request, in small slow chunks, ignoring Range;
/// counts the requests.
async fn slow_server(body: Arc<Vec<u8>>, requests: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (body, requests) = (Arc::clone(&body), Arc::clone(&requests));
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                requests.fetch_add(1, Ordering::SeqCst);
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if stream.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                for chunk in body.chunks(16 * 1024) {
                    if stream.write_all(chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }
    });
    url
}

fn good_list(url: &str, body: &[u8]) -> GoodList {
    let digest: [u8; 64] = Sha512::digest(body).into();
    let document = serde_json::json!({"hv:imagelist": {
        "dc:identifier": "0d2c7e52-1f8a-4b5e-9a61-7f3e2d9c4b11",
        "dc:title": "one image",
        "dc:description": "a list with one image",
        "dc:source": "example.org",
        "dc:date:created": "2020-01-01T00:00:00Z",
        "dc:date:expires": "2099-01-01T00:00:00Z",
        "hv:version": "1",
        "hv:uri": format!("{url}/image.list"),
        "hv:endorser": {"hv:x509": {
            "hv:dn": "/CN=signer", "hv:ca": "/CN=ca",
            "hv:email": "signer@example.org", "dc:creator": "Signer",
        }},
        "hv:images": [{"hv:image": {
            "dc:identifier": "img-one",
            "dc:title": "image one",
            "dc:description": "an image",
            "hv:uri": format!("{url}/img-one"),
            "hv:size": body.len(),
            "sl:checksum:sha512": Sha512Hex::from_digest(&digest).as_str(),
            "sl:os": "Linux", "sl:osversion": "9", "sl:arch": "x86_64",
            "sl:comments": "", "hv:hypervisor": "kvm", "hv:version": "1",
        }}],
    }});
    GoodList {
        parsed: imagelist::parse(&serde_json::to_vec(&document).unwrap()).unwrap(),
        digest: Sha512Hex::from_digest(&[9; 64]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscriptions_of_one_image_download_it_once() {
    let body: Arc<Vec<u8>> = Arc::new((0..1_500_000u32).map(|i| (i % 251) as u8).collect());
    let requests = Arc::new(AtomicUsize::new(0));
    let url = slow_server(Arc::clone(&body), Arc::clone(&requests)).await;
    let dir = tempfile::tempdir().unwrap();
    let (core, _) = Subscriptions::open(CoreConfig {
        cache_dir: dir.path().join("cache"),
        ca_dir: dir.path().join("ca"),
        state_file: dir.path().join("state.json"),
        allow_file_urls: false,
        max_list_bytes: DEFAULT_MAX_LIST_BYTES,
        max_clock_skew: Duration::from_secs(300),
        transfer: TransferConfig::default(),
        artifact_base_url: None,
        crl_dir: None,
        crl_refresh_interval: None,
    })
    .unwrap();
    let good = good_list(&url, &body);
    let image = &good.parsed.list.images[0];
    let key = ListKey::new(
        Namespace::new("grid").unwrap(),
        SubscriptionName::new("site").unwrap(),
    )
    .image(ImageId::new("img-one").unwrap());
    let settings = Ok(TransferSettings::default());
    let list_url = format!("{url}/image.list");
    let now = jiff::Timestamp::now();
    let request = Download {
        transfer: &settings,
        list_url: &list_url,
        good: &good,
        image,
        key: &key,
        now,
    };
    let (first, second) = tokio::join!(core.download(&request, &()), core.download(&request, &()),);
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second);
    assert_eq!(requests.load(Ordering::SeqCst), 1, "one download for both");
    let on_disk = std::fs::read(&first).unwrap();
    assert!(on_disk == *body, "the promoted file is the published image");
    assert!(core.store().cached(&key).is_some());
}
