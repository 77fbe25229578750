//! The gRPC codec of a server-streaming method whose responses are written
//! as protobuf bytes that already exist (a flow encoded once and shared by
//! every follower, a peer's response forwarded as received), while its
//! requests decode as tonic's prost codec decodes them. The exporter's and
//! the relay's `GetFlows` both use it, each with its own response type.
//! And its client-side mirror, [`RawResponseCodec`]: requests encoded as
//! prost does, each response handed over as the bytes received (the
//! relay's peer calls, the archiver's follower).

use std::marker::PhantomData;

use bytes::{Buf, BufMut as _};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// A response that writes its own protobuf encoding (the bytes tonic's
/// prost codec would write for the message it stands for).
pub trait EncodeResponse: Send + 'static {
    /// Writes the encoding into `dst`.
    fn encode_response(self, dst: &mut EncodeBuf<'_>) -> Result<(), Status>;
}

/// Writes `bytes` as they are (for an [`EncodeResponse`] holding them).
pub fn put_encoded(bytes: &[u8], dst: &mut EncodeBuf<'_>) {
    dst.put_slice(bytes);
}

/// Encodes `message` as tonic's prost codec would (for an
/// [`EncodeResponse`] that holds a message instead of bytes).
pub fn put_message(message: &impl prost::Message, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
    message
        .encode(dst)
        .map_err(|e| Status::internal(format!("encoding a response: {e}")))
}

/// Requests `Req` decoded by prost, responses `Resp` written by
/// [`EncodeResponse`].
pub struct PreEncodedCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> PreEncodedCodec<Req, Resp> {
    /// The codec.
    pub const fn new() -> Self {
        PreEncodedCodec(PhantomData)
    }
}

impl<Req, Resp> Default for PreEncodedCodec<Req, Resp> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Req, Resp> Clone for PreEncodedCodec<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp> Copy for PreEncodedCodec<Req, Resp> {}

impl<Req, Resp> std::fmt::Debug for PreEncodedCodec<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreEncodedCodec")
    }
}

/// Encoder half of [`PreEncodedCodec`].
#[derive(Debug)]
pub struct ResponseEncoder<Resp>(PhantomData<fn() -> Resp>);

/// Decoder half of [`PreEncodedCodec`].
#[derive(Debug)]
pub struct RequestDecoder<Req>(PhantomData<fn() -> Req>);

impl<Req, Resp> Codec for PreEncodedCodec<Req, Resp>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: EncodeResponse,
{
    type Encode = Resp;
    type Decode = Req;
    type Encoder = ResponseEncoder<Resp>;
    type Decoder = RequestDecoder<Req>;

    fn encoder(&mut self) -> Self::Encoder {
        ResponseEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RequestDecoder(PhantomData)
    }
}

impl<Resp: EncodeResponse> Encoder for ResponseEncoder<Resp> {
    type Item = Resp;
    type Error = Status;

    fn encode(&mut self, item: Resp, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode_response(dst)
    }
}

impl<Req: prost::Message + Default> Decoder for RequestDecoder<Req> {
    type Item = Req;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Req>, Status> {
        let req = Req::decode(src.copy_to_bytes(src.remaining()))
            .map_err(|e| Status::internal(format!("decoding the request: {e}")))?;
        Ok(Some(req))
    }
}

/// A response made from the bytes received (the bytes tonic's prost codec
/// would decode a message from).
pub trait DecodeResponse: Sized + Send + 'static {
    /// Takes the response out of `src` (all of its remaining bytes).
    fn decode_response(src: &mut DecodeBuf<'_>) -> Result<Self, Status>;
}

/// The bytes themselves, split off tonic's read buffer (for a reader that
/// is done with a response before it reads the next).
impl DecodeResponse for bytes::Bytes {
    fn decode_response(src: &mut DecodeBuf<'_>) -> Result<Self, Status> {
        Ok(src.copy_to_bytes(src.remaining()))
    }
}

/// Requests `Req` encoded by prost, responses `Resp` made by
/// [`DecodeResponse`]: a client codec.
pub struct RawResponseCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> RawResponseCodec<Req, Resp> {
    /// The codec.
    pub const fn new() -> Self {
        RawResponseCodec(PhantomData)
    }
}

impl<Req, Resp> Default for RawResponseCodec<Req, Resp> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Req, Resp> Clone for RawResponseCodec<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp> Copy for RawResponseCodec<Req, Resp> {}

impl<Req, Resp> std::fmt::Debug for RawResponseCodec<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawResponseCodec")
    }
}

/// Encoder half of [`RawResponseCodec`].
#[derive(Debug)]
pub struct RequestEncoder<Req>(PhantomData<fn() -> Req>);

/// Decoder half of [`RawResponseCodec`].
#[derive(Debug)]
pub struct RawResponseDecoder<Resp>(PhantomData<fn() -> Resp>);

impl<Req, Resp> Codec for RawResponseCodec<Req, Resp>
where
    Req: prost::Message + Send + 'static,
    Resp: DecodeResponse,
{
    type Encode = Req;
    type Decode = Resp;
    type Encoder = RequestEncoder<Req>;
    type Decoder = RawResponseDecoder<Resp>;

    fn encoder(&mut self) -> Self::Encoder {
        RequestEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawResponseDecoder(PhantomData)
    }
}

impl<Req: prost::Message> Encoder for RequestEncoder<Req> {
    type Item = Req;
    type Error = Status;

    fn encode(&mut self, item: Req, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encoding the request: {e}")))
    }
}

impl<Resp: DecodeResponse> Decoder for RawResponseDecoder<Resp> {
    type Item = Resp;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Resp>, Status> {
        Resp::decode_response(src).map(Some)
    }
}

/// A generated gRPC server `G` with one server-streaming method (at `path`)
/// answered by `method` through [`PreEncodedCodec`]: everything else (the
/// other methods, and for this one the request's validation, errors and
/// headers, which `method` produces) is the generated server's.
pub struct StreamingOverride<G, M, Req, Resp> {
    generated: G,
    path: &'static str,
    method: M,
    codec: PreEncodedCodec<Req, Resp>,
}

impl<G, M, Req, Resp> StreamingOverride<G, M, Req, Resp> {
    /// `generated`, with the method at `path` (`/package.Service/Method`)
    /// answered by `method`.
    pub fn new(generated: G, path: &'static str, method: M) -> Self {
        StreamingOverride {
            generated,
            path,
            method,
            codec: PreEncodedCodec::new(),
        }
    }
}

impl<G: Clone, M: Clone, Req, Resp> Clone for StreamingOverride<G, M, Req, Resp> {
    fn clone(&self) -> Self {
        StreamingOverride {
            generated: self.generated.clone(),
            path: self.path,
            method: self.method.clone(),
            codec: self.codec,
        }
    }
}

impl<G, M, Req, Resp> std::fmt::Debug for StreamingOverride<G, M, Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingOverride")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<G: tonic::server::NamedService, M, Req, Resp> tonic::server::NamedService
    for StreamingOverride<G, M, Req, Resp>
{
    const NAME: &'static str = G::NAME;
}

impl<G, M, Req, Resp, B> tonic::codegen::Service<http::Request<B>>
    for StreamingOverride<G, M, Req, Resp>
where
    G: tonic::codegen::Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
            Future = tonic::codegen::BoxFuture<
                http::Response<tonic::body::Body>,
                std::convert::Infallible,
            >,
        >,
    M: tonic::server::ServerStreamingService<Req, Response = Resp> + Clone + Send + 'static,
    M::Future: Send,
    M::ResponseStream: Send + 'static,
    Req: prost::Message + Default + Send + 'static,
    Resp: EncodeResponse,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.generated.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != self.path {
            return self.generated.call(req);
        }
        let (method, codec) = (self.method.clone(), self.codec);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(codec);
            Ok(grpc.server_streaming(method, req).await)
        })
    }
}
