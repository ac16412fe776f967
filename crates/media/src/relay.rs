//! Two calls' media joined (the live bridge's relay, a B2BUA): each
//! session passes what its peer says to the other and sends what the
//! other's peer says instead of prompts.

use tokio::sync::mpsc;

use super::prompt::FRAME;
use hotline_sip::sdp::Codec;

/// One side of two sessions joined (a B2BUA's media relay): linear 8 kHz
/// frames pass between them, so an A-law leg and a µ-law leg meet without
/// more. Each side keeps at most `BRIDGE_FRAMES` waiting (the two clocks
/// drift; older frames are dropped rather than delay grow).
#[derive(Debug)]
pub struct Bridge {
    to_other: mpsc::Sender<[i16; FRAME]>,
    from_other: mpsc::Receiver<[i16; FRAME]>,
}

/// Frames a bridge keeps waiting, at most (60 ms).
const BRIDGE_FRAMES: usize = 3;

/// The two sides of a bridge, one for each session.
pub fn bridge() -> (Bridge, Bridge) {
    let (a_tx, a_rx) = mpsc::channel(BRIDGE_FRAMES + 1);
    let (b_tx, b_rx) = mpsc::channel(BRIDGE_FRAMES + 1);
    (
        Bridge {
            to_other: a_tx,
            from_other: b_rx,
        },
        Bridge {
            to_other: b_tx,
            from_other: a_rx,
        },
    )
}

impl Bridge {
    /// The frame the other side's peer said last, the backlog beyond
    /// `BRIDGE_FRAMES` dropped.
    pub(super) fn take(&mut self) -> Option<[i16; FRAME]> {
        while self.from_other.len() > BRIDGE_FRAMES {
            let _ = self.from_other.try_recv();
        }
        self.from_other.try_recv().ok()
    }

    /// What our peer said, for the other side (dropped when it lags).
    pub(super) fn give(&self, frame: [i16; FRAME]) {
        let _ = self.to_other.try_send(frame);
    }
}

/// A linear frame in the leg's law.
pub(super) fn encode(codec: Codec, frame: &[i16; FRAME]) -> [u8; FRAME] {
    frame.map(|s| match codec {
        Codec::Pcmu => super::g711::linear_to_ulaw(s),
        Codec::Pcma => super::g711::linear_to_alaw(s),
    })
}

#[cfg(test)]
mod tests;
