//! Voice prompts: 8 kHz mono 16-bit WAV files, loaded once at start-up and
//! pre-encoded for both G.711 laws so playback does no per-call work.

use std::path::Path;
use std::sync::Arc;

use super::g711;
use hotline_sip::sdp::Codec;

/// Samples per 20 ms frame at 8 kHz.
pub const FRAME: usize = 160;

/// A prompt ready to send.
#[derive(Debug, Clone)]
pub struct Prompt {
    pcm: Arc<[i16]>,
    ulaw: Arc<[u8]>,
    alaw: Arc<[u8]>,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: cannot read WAV: {error}")]
    Read { path: String, error: hound::Error },
    #[error(
        "{path}: must be 8000 Hz mono 16-bit PCM, is {rate} Hz, {channels} channel(s), {bits}-bit"
    )]
    Format {
        path: String,
        rate: u32,
        channels: u16,
        bits: u16,
    },
    #[error("{path}: has no samples")]
    Empty { path: String },
}

impl Prompt {
    pub fn load(path: &Path) -> Result<Prompt, PromptError> {
        let name = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|error| PromptError::Read {
            path: name.clone(),
            error,
        })?;
        let spec = reader.spec();
        if spec.sample_rate != 8000
            || spec.channels != 1
            || spec.bits_per_sample != 16
            || spec.sample_format != hound::SampleFormat::Int
        {
            return Err(PromptError::Format {
                path: name,
                rate: spec.sample_rate,
                channels: spec.channels,
                bits: spec.bits_per_sample,
            });
        }
        let pcm: Vec<i16> = reader
            .into_samples::<i16>()
            .collect::<Result<_, _>>()
            .map_err(|error| PromptError::Read {
                path: name.clone(),
                error,
            })?;
        if pcm.is_empty() {
            return Err(PromptError::Empty { path: name });
        }
        Ok(Prompt::from_pcm(pcm))
    }

    pub fn from_pcm(pcm: Vec<i16>) -> Prompt {
        let ulaw = pcm.iter().map(|&s| g711::linear_to_ulaw(s)).collect();
        let alaw = pcm.iter().map(|&s| g711::linear_to_alaw(s)).collect();
        Prompt {
            pcm: pcm.into(),
            ulaw,
            alaw,
        }
    }

    pub fn samples(&self) -> &[i16] {
        &self.pcm
    }

    /// Number of 20 ms frames (the last one padded with silence).
    pub fn frames(&self) -> usize {
        self.pcm.len().div_ceil(FRAME)
    }

    /// The encoded payload of frame `i` (shorter for the last frame).
    pub fn frame(&self, codec: Codec, i: usize) -> &[u8] {
        let data: &[u8] = match codec {
            Codec::Pcmu => &self.ulaw,
            Codec::Pcma => &self.alaw,
        };
        let start = (i * FRAME).min(data.len());
        &data[start..(start + FRAME).min(data.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cover_the_prompt() {
        let p = Prompt::from_pcm(vec![1000; 400]);
        assert_eq!(p.frames(), 3);
        assert_eq!(p.frame(Codec::Pcmu, 0).len(), 160);
        assert_eq!(p.frame(Codec::Pcma, 2).len(), 80);
        assert_eq!(p.frame(Codec::Pcmu, 0)[0], g711::linear_to_ulaw(1000));
    }

    #[test]
    fn wrong_format_is_refused_with_the_path() {
        let dir = std::env::temp_dir().join(format!("hotline-prompt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(0i16).unwrap();
        w.write_sample(0i16).unwrap();
        w.finalize().unwrap();
        let err = Prompt::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("stereo.wav") && err.contains("2 channel"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
