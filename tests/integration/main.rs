//! Bashu's end-to-end tests, one binary, every test against a real nats-server of its own.

mod admin;
mod alert_counties;
mod alerts;
mod alerts_faults;
mod board;
mod bus_contract;
mod bus_security;
mod cluster_faults;
mod deploy_manifests;
mod distribution;
mod distribution_faults;
mod foreign_client;
mod ingest;
mod ingest_feeds;
mod malformed;
mod moderation;
mod nats_harness;
mod observability;
mod operations_doc;
mod process_faults;
mod registry;
mod replicas;
mod review;
mod shutdown;
mod slow_receivers;
mod story_flow;
