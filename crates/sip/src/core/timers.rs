//! The timers: what each one does when it fires (server and client
//! transactions, our INVITEs' Timer A/B and ring timeout, the 2xx
//! retransmission and the ACK wait, idle TCP connections).

use super::*;

impl Core {
    pub fn on_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.armed.get(&key) != Some(&at) {
                continue; // superseded
            }
            self.armed.remove(&key);
            match key {
                TimerKey::Tx(id) => self.tx_timer(id, now),
                TimerKey::Call(id) => self.call_timer(id, now),
                TimerKey::Session(id) => self.session_timer(id, now),
                TimerKey::Reliable(id) => self.reliable_timer(id, now),
                TimerKey::Register => self.send_register(None, now),
                TimerKey::Handed(id) => self.handed_timer(id, now),
                TimerKey::Client(id) => self.client_timer(id, now),
                TimerKey::Conn(id) => self.conn_timer(id, now),
            }
        }
        self.shrink_tables();
    }

    /// Gives back the tables' room after a burst: a map keeps the capacity
    /// of its peak (at 60 calls/s about 20,000 transactions wait out their
    /// Timer J at once: megabytes held after every call has ended). A table
    /// at a quarter of its capacity or less is shrunk to twice its length,
    /// so the rehashing is paid once per halving, never per timer. Run as
    /// timers fire: the last ones of a burst empty the tables.
    fn shrink_tables(&mut self) {
        fn shrink<K: Eq + std::hash::Hash, V>(m: &mut std::collections::HashMap<K, V>) {
            if m.capacity() > 64 && m.capacity() / 4 >= m.len() {
                m.shrink_to(m.len() * 2);
            }
        }
        shrink(&mut self.txs);
        shrink(&mut self.tx_index);
        shrink(&mut self.calls);
        shrink(&mut self.dialogs);
        shrink(&mut self.initial);
        shrink(&mut self.clients);
        shrink(&mut self.uac_index);
        shrink(&mut self.uac_completed);
        shrink(&mut self.client_index);
        shrink(&mut self.conns);
        shrink(&mut self.armed);
        shrink(&mut self.handed);
        if self.timers.capacity() > 64 && self.timers.capacity() / 4 >= self.timers.len() {
            self.timers.shrink_to(self.timers.len() * 2);
        }
        if self.out.capacity() > 64 && self.out.capacity() / 4 >= self.out.len() {
            self.out.shrink_to(self.out.len() * 2);
        }
    }

    fn tx_timer(&mut self, id: u64, now: Instant) {
        let Some(e) = self.txs.get_mut(&id) else {
            return;
        };
        match e.tx.on_timer(now) {
            TimerAction::Retransmit(data) => {
                let p = e.peer;
                let at = e.tx.next_deadline();
                self.send(&p, data);
                self.arm(TimerKey::Tx(id), at);
            }
            TimerAction::NoAck | TimerAction::Terminated => {
                if let Some(e) = self.txs.remove(&id) {
                    self.tx_index.remove(&e.key);
                    self.admission.tx_ended(e.source);
                }
            }
            TimerAction::None => {
                let at = e.tx.next_deadline();
                self.arm(TimerKey::Tx(id), at);
            }
        }
    }

    fn call_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.state == CallState::Dialing {
            let peer = c.peer;
            let Some(u) = c.uac.as_mut() else { return };
            return match u.tx.on_timer(now) {
                TimerAction::Retransmit(invite) => {
                    let at = u.tx.next_deadline();
                    self.send(&peer, invite);
                    self.arm(TimerKey::Call(call), Some(at))
                }
                // No final response to our CANCEL.
                TimerAction::Terminated if u.cancelled => self.remove_call(call, EndReason::Hangup),
                // Ringing too long.
                TimerAction::Terminated if u.tx.is_proceeding() => self.cancel_dial(call, now),
                // Timer B: nobody answered at all.
                TimerAction::Terminated => self.remove_call(call, EndReason::Rejected(408)),
                _ => {
                    let at = u.tx.next_deadline();
                    self.arm(TimerKey::Call(call), Some(at))
                }
            };
        }
        if let Some((at, _)) = &c.delayed_ok {
            let at = *at;
            if at > now {
                return self.arm(TimerKey::Call(call), Some(at));
            }
            if let Some((_, ok)) = c.delayed_ok.take() {
                return self.release_ok(call, ok, now);
            }
        }
        let Some(p) = c.pending_ok.as_mut() else {
            return;
        };
        match p.on_timer(now) {
            TimerAction::Retransmit(data) => {
                let at = p.next_deadline();
                let peer = c.peer;
                self.send(&peer, data);
                self.arm(TimerKey::Call(call), Some(at));
            }
            TimerAction::NoAck => {
                Metrics::inc(&self.metrics.calls_unconfirmed);
                tracing::warn!(call_id = %c.call_id, source = %c.peer.addr, "no ACK for our 200 OK within 64*T1: hanging up; no ticket");
                self.end_call(call, EndReason::NoAck, now, true);
            }
            _ => {
                let at = p.next_deadline();
                self.arm(TimerKey::Call(call), Some(at));
            }
        }
    }

    fn client_timer(&mut self, id: u64, now: Instant) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        match c.tx.on_timer(now) {
            TimerAction::Retransmit(data) => {
                let (at, peer) = (c.tx.next_deadline(), c.peer);
                self.send(&peer, data);
                self.arm(TimerKey::Client(id), Some(at));
            }
            TimerAction::None => {
                let at = c.tx.next_deadline();
                self.arm(TimerKey::Client(id), Some(at));
            }
            _ => {
                if let Some(c) = self.clients.remove(&id) {
                    self.client_index.remove(&c.branch);
                    // Timer F (or B): no final response at all.
                    match (c.purpose, c.tx.is_completed()) {
                        (Purpose::Report, false) => {
                            self.out.push_back(Output::RequestDone { id, status: None })
                        }
                        (Purpose::Refresh(call), false) => self.refresh_failed(call, now),
                        (Purpose::Register, false) => {
                            tracing::warn!("no answer to our REGISTER: trying again in 30 s");
                            self.registration_failed(None, now);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn conn_timer(&mut self, id: u64, now: Instant) {
        let Some(c) = self.conns.get(&id) else { return };
        let idle_until = c.last_activity + self.cfg.tcp_idle;
        if idle_until > now {
            return self.arm(TimerKey::Conn(id), Some(idle_until));
        }
        if self.conn_busy(id) {
            return self.arm(TimerKey::Conn(id), Some(now + self.cfg.tcp_idle));
        }
        tracing::debug!(conn = id, "closing idle TCP connection");
        self.conns.remove(&id);
        self.out.push_back(Output::Close(id));
    }
}
