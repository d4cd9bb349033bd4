//! AWS clients from the default credential chain (IRSA in a cluster: the ServiceAccount's
//! role), with the region and endpoint overridable — for other partitions, VPC endpoints, and
//! the tests' moto server.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;

/// How to reach AWS. Everything optional: the default chain decides (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_GLUE`, ... are honoured by the SDK itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSettings {
    /// Region of Glue, Athena, SNS and SQS; default from the chain (`AWS_REGION`, profile, IMDS).
    pub region: Option<String>,
    /// One endpoint for every service (e.g. `http://127.0.0.1:5000` for moto).
    pub endpoint: Option<String>,
    /// Attempts per call by the SDK's standard retry mode (throttling, 5xx) before the error
    /// reaches the operator's own backoff; default 3.
    pub max_attempts: Option<u32>,
}

/// One client per service, sharing credentials and settings.
#[derive(Clone, Debug)]
pub struct Clients {
    pub glue: aws_sdk_glue::Client,
    pub athena: aws_sdk_athena::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// For bucket notification configuration (path-style when an endpoint is set, as
    /// S3-compatible servers and moto need).
    pub s3: aws_sdk_s3::Client,
    /// The region the clients use.
    pub region: String,
}

impl Clients {
    /// Loads the default chain with `settings` applied. Credentials are resolved lazily, on
    /// the first call: a missing role shows as an `AccessDenied`/credentials error there.
    pub async fn new(settings: &AwsSettings) -> Clients {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.unwrap_or(3).max(1)));
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let shared = loader.load().await;
        let region = shared.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".to_string());
        let s3_config =
            aws_sdk_s3::config::Builder::from(&shared).force_path_style(settings.endpoint.is_some()).build();
        Clients {
            glue: aws_sdk_glue::Client::new(&shared),
            athena: aws_sdk_athena::Client::new(&shared),
            sns: aws_sdk_sns::Client::new(&shared),
            sqs: aws_sdk_sqs::Client::new(&shared),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            region,
        }
    }
}
