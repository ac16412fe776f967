//! The hotline gateway's media (a crate of its own, beside the SIP stack:
//! it uses SDP's codecs and keys and the overload counters, nothing else of
//! the gateway's). RTP sockets from a port range, G.711, SRTP, prompt playback
//! paced on one clock. Never parses SIP and never knows tickets: the call
//! layer hands it an address, a codec, keys and prompts, and reads back
//! what arrived.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod dtmf;
pub mod g711;
pub mod ports;
pub mod prompt;
pub mod relay;
pub mod rtp;
pub mod srtp;
pub mod track;
pub mod webrtc;

pub use prompt::Prompt;
