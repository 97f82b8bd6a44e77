//! A real S3-compatible server for the object-storage tests: moto's `moto_server` on
//! 127.0.0.1 and a free port, with a bucket, checked to refuse a second put-if-absent (HTTP
//! 412) before any test relies on it. Killed when dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, eventually_with};

/// `moto_server`: `$ISOLAKE_MOTO`, else the venv `.ci/run` creates. Fails (never skips) when
/// it is missing, saying how to get it.
pub fn moto_server() -> PathBuf {
    crate::installed_tool(
        "ISOLAKE_MOTO",
        "venv-moto/bin/moto_server",
        "the object-storage tests need an S3-compatible server",
    )
}

/// A running moto server with one bucket.
pub struct MotoServer {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    pub bucket: String,
    _server: ChildGuard,
}

/// Refuses a second `If-None-Match: *` put of one key: what isolake's commits rely on.
const CONDITIONAL_PUT_PROBE: &str = r#"
import json, sys, boto3, botocore
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
bucket = sys.argv[2]
s3.put_object(Bucket=bucket, Key="_probe", Body=b"1", IfNoneMatch="*")
try:
    s3.put_object(Bucket=bucket, Key="_probe", Body=b"2", IfNoneMatch="*")
    status = 200
except botocore.exceptions.ClientError as e:
    status = e.response["ResponseMetadata"]["HTTPStatusCode"]
body = s3.get_object(Bucket=bucket, Key="_probe")["Body"].read().decode()
s3.delete_object(Bucket=bucket, Key="_probe")
print(json.dumps({"second_put": status, "body": body}))
"#;

impl MotoServer {
    /// Starts a server and makes `bucket`.
    pub fn start(bucket: &str) -> Self {
        let moto = moto_server();
        let port = crate::free_port();
        let server = ChildGuard::spawn(
            Command::new(&moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::blocking::Client::new();
        let url = format!("{endpoint}/{bucket}");
        eventually_with(
            Duration::from_secs(30),
            "moto to make the bucket",
            || match client.put(&url).send() {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            },
        );
        let python = moto.with_file_name("python");
        let probe =
            crate::run_python_at(&python, CONDITIONAL_PUT_PROBE, &[endpoint.as_str(), bucket]);
        assert_eq!(
            probe,
            serde_json::json!({"second_put": 412, "body": "1"}),
            "this moto does not refuse a second put-if-absent: isolake's commits need it"
        );
        Self {
            endpoint,
            bucket: bucket.to_string(),
            _server: server,
        }
    }

    /// The storage options of this server (object_store's keys), with dummy credentials:
    /// without keys object_store would ask a cloud metadata service.
    pub fn options(&self) -> HashMap<String, String> {
        [
            ("aws_endpoint_url", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The same as the `AWS_*` variables a child process (or Python's deltalake) reads.
    pub fn env(&self) -> Vec<(String, String)> {
        self.options()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect()
    }
}

/// Puts every file of the local directory `from` under `url` (`s3://bucket/prefix/`), in name
/// order, each as one object of the same name; the process's storage options must be this
/// server's (`Lake::on_s3` sets them).
pub fn upload(from: &std::path::Path, url: &str) {
    let url = url::Url::parse(url).expect("an s3:// URL");
    let dir = isolake_data::lake::objects::ObjectDir::open(&url).expect("open the prefix");
    let mut files: Vec<_> = std::fs::read_dir(from)
        .expect("list the files to upload")
        .map(|e| e.expect("an entry").path())
        .collect();
    files.sort();
    crate::lake::block_on(async {
        for file in files {
            let name = file
                .file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&file).expect("read a file to upload");
            dir.put(&name, bytes).await.expect("upload a file");
        }
    });
}
