//! Tests of the services pipeline.
