//! A linearizability checker for single registers with read, write and compare-and-set: the
//! search of Wing & Gong as extended by Lowe ("just-in-time linearization" with memoisation of
//! (linearized set, register state) pairs; Horn & Kroening describe the same search), and, for
//! histories of reads and writes of distinct values, the exact polynomial zone test of Gibbons &
//! Korach, on which the search is exponential.
//!
//! Linearizability is local (Herlihy & Wing): a history over many keys is linearizable iff each
//! key's sub-history is, so callers check one register at a time. Operations whose outcome is
//! unknown (a timeout, a dropped connection, a 5xx) follow the usual theory (Knossos, Porcupine):
//! they may have taken effect at any instant after their invocation, or never, so their
//! completion is placed at infinity and their result is not judged; an unknown read carries no
//! information and is left out.
//!
//! Not a crate: `stateright`'s tester has no memoisation (its search is exponential on the
//! 64-client histories we check) and pulls in a model checker; `todc-utils` has no notion of an
//! unknown outcome and panics on an empty history.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

/// What a client asked of one register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call<V> {
    Read,
    Write(V),
    /// Write `new` if the register holds `expected` (`None`: if it holds nothing).
    CompareAndSet {
        expected: Option<V>,
        new: V,
    },
}

/// What the client was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<V> {
    /// A read's answer (`None`: no value).
    Read(Option<V>),
    /// A write or a compare-and-set that took effect.
    Done,
    /// A compare-and-set refused because the register held something else.
    Refused,
    /// No answer the client can trust: the operation may or may not have taken effect.
    Unknown,
}

/// One operation as a client saw it: instants in any monotonic unit (e.g. nanoseconds since the
/// run began), `invoked` taken before the request was sent and `completed` after the answer was
/// read.
#[derive(Clone, Debug)]
pub struct Operation<V> {
    pub client: usize,
    pub invoked: u64,
    pub completed: u64,
    pub call: Call<V>,
    pub outcome: Outcome<V>,
}

/// Why a history is not linearizable, for the failure message.
#[derive(Debug)]
pub struct Violation {
    pub reason: String,
}

/// The search gave up: more steps than allowed. Not a verdict either way.
#[derive(Debug)]
pub struct Inconclusive {
    pub steps: u64,
}

/// The verdict on one register's history.
#[derive(Debug)]
pub enum Verdict {
    Linearizable,
    NotLinearizable(Violation),
    Inconclusive(Inconclusive),
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

/// One end of an operation in the time-ordered event list.
#[derive(Clone, Copy)]
struct Event {
    op: usize,
    is_call: bool,
}

/// The sequential specification: whether `op` with its observed outcome is possible on a
/// register holding `state`, and the state after it.
fn apply<V: Clone + PartialEq>(
    state: &Option<V>,
    call: &Call<V>,
    outcome: &Outcome<V>,
) -> Option<Option<V>> {
    match (call, outcome) {
        (Call::Read, Outcome::Read(seen)) => (seen == state).then(|| state.clone()),
        (Call::Read, _) => None,
        (Call::Write(v), Outcome::Done | Outcome::Unknown) => Some(Some(v.clone())),
        (Call::Write(_), _) => None,
        (Call::CompareAndSet { expected, new }, Outcome::Done) => {
            (expected == state).then(|| Some(new.clone()))
        }
        (Call::CompareAndSet { expected, .. }, Outcome::Refused) => {
            (expected != state).then(|| state.clone())
        }
        (Call::CompareAndSet { expected, new }, Outcome::Unknown) => Some(if expected == state {
            Some(new.clone())
        } else {
            state.clone()
        }),
        (Call::CompareAndSet { .. }, Outcome::Read(_)) => None,
    }
}

/// Checks one register's history, starting from `initial`: by zones when it has only reads and
/// writes of distinct values (exact and O(n log n)), else by the search with at most
/// `max_steps` steps.
pub fn check<V>(initial: Option<V>, history: &[Operation<V>], max_steps: u64) -> Verdict
where
    V: Clone + Eq + Hash + Debug,
{
    match check_zones(&initial, history) {
        Some(verdict) => verdict,
        None => check_search(initial, history, max_steps),
    }
}

/// The zone test of Gibbons & Korach ("Testing shared memories", 1997; as used by Golab, Li &
/// Shah) for a read/write register whose writes all write distinct values. Group each value's
/// write with the reads that returned it (a cluster; the initial value is written at instant 0).
/// A cluster's zone runs from the earliest completion to the latest invocation among its
/// operations: forward when that completion comes first, backward otherwise. The history is
/// linearizable iff every read follows the invocation of its write, no two forward zones
/// overlap, and no backward zone lies inside a forward one. `None` when the test does not apply
/// (a compare-and-set, or two writes of one value): the caller then searches.
///
/// The search alone is exponential on this shape: a key written blindly by many clients with
/// slow answers has many overlapping writes nobody reads, and every subset of them is a distinct
/// search state.
pub fn check_zones<V>(initial: &Option<V>, history: &[Operation<V>]) -> Option<Verdict>
where
    V: Clone + Eq + Hash + Debug,
{
    use std::collections::HashMap;
    if history
        .iter()
        .any(|o| matches!(o.call, Call::CompareAndSet { .. }))
    {
        return None;
    }
    // The write of each value (the initial one at instant 0), and the clusters' zones.
    let mut writes: HashMap<Option<V>, (u64, u64)> = HashMap::new();
    writes.insert(initial.clone(), (0, 0));
    let observed: HashSet<Option<V>> = history
        .iter()
        .filter_map(|o| match &o.outcome {
            Outcome::Read(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    for o in history {
        if let Call::Write(v) = &o.call {
            let value = Some(v.clone());
            // A write whose answer was lost and whose value nobody read may never have
            // happened: leaving it out loses no linearization and adds none.
            if o.outcome == Outcome::Unknown && !observed.contains(&value) {
                continue;
            }
            let completed = if o.outcome == Outcome::Unknown {
                u64::MAX
            } else {
                o.completed
            };
            if writes.insert(value, (o.invoked, completed)).is_some() {
                return None;
            }
        }
    }
    let mut zones: HashMap<Option<V>, (u64, u64)> = writes
        .iter()
        .map(|(v, (invoked, completed))| (v.clone(), (*completed, *invoked)))
        .collect();
    for o in history {
        let Outcome::Read(seen) = &o.outcome else {
            continue;
        };
        let Some(&(write_invoked, _)) = writes.get(seen) else {
            return Some(Verdict::NotLinearizable(Violation {
                reason: format!("{o:?} read a value never written"),
            }));
        };
        if o.completed < write_invoked {
            return Some(Verdict::NotLinearizable(Violation {
                reason: format!("{o:?} completed before the write of its value was invoked"),
            }));
        }
        let zone = zones.get_mut(seen).expect("a zone per written value");
        zone.0 = zone.0.min(o.completed);
        zone.1 = zone.1.max(o.invoked);
    }
    // (earliest completion, latest invocation): forward zones as [completion, invocation].
    let mut forward: Vec<(u64, u64, &Option<V>)> = zones
        .iter()
        .filter(|(_, (first_done, last_start))| first_done < last_start)
        .map(|(v, (first_done, last_start))| (*first_done, *last_start, v))
        .collect();
    forward.sort_by_key(|f| (f.0, f.1));
    for pair in forward.windows(2) {
        // Touching zones count as disjoint: ties in the clock are read leniently.
        if pair[1].0 < pair[0].1 {
            return Some(Verdict::NotLinearizable(Violation {
                reason: format!(
                    "the forward zones of {:?} [{}, {}] and {:?} [{}, {}] overlap: each value was seen after the other's was",
                    pair[0].2, pair[0].0, pair[0].1, pair[1].2, pair[1].0, pair[1].1
                ),
            }));
        }
    }
    for (v, (first_done, last_start)) in &zones {
        if first_done < last_start {
            continue;
        }
        // A backward zone [last invocation, first completion] inside a forward zone.
        let (start, end) = (*last_start, *first_done);
        let inside = forward.partition_point(|f| f.0 < start);
        if let Some(f) = forward[..inside].last().filter(|f| end < f.1) {
            return Some(Verdict::NotLinearizable(Violation {
                reason: format!(
                    "the zone of {v:?} [{start}, {end}] lies inside the forward zone of {:?} [{}, {}]",
                    f.2, f.0, f.1
                ),
            }));
        }
    }
    Some(Verdict::Linearizable)
}

/// The search of Wing & Gong with Lowe's memoisation, for any history of the register (also
/// with compare-and-set), with at most `max_steps` steps.
pub fn check_search<V>(initial: Option<V>, history: &[Operation<V>], max_steps: u64) -> Verdict
where
    V: Clone + Eq + Hash + Debug,
{
    // An unknown read says nothing; an unknown write may land at any time after its invocation.
    let ops: Vec<Operation<V>> = history
        .iter()
        .filter(|o| !(o.call == Call::Read && o.outcome == Outcome::Unknown))
        .cloned()
        .map(|mut o| {
            if o.outcome == Outcome::Unknown {
                o.completed = u64::MAX;
            }
            o
        })
        .collect();
    if ops.is_empty() {
        return Verdict::Linearizable;
    }

    // Events in time order; at equal instants invocations come first, so that touching
    // operations count as concurrent (the lenient reading: it never rejects a valid history).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, o) in ops.iter().enumerate() {
        events.push((o.invoked, false, i));
        events.push((o.completed.max(o.invoked), true, i));
    }
    events.sort();
    let events: Vec<Event> = events
        .into_iter()
        .map(|(_, is_return, op)| Event {
            op,
            is_call: !is_return,
        })
        .collect();

    // A doubly linked list over the events, with a head sentinel at index `n`.
    let n = events.len();
    let head = n;
    let mut next: Vec<usize> = (1..=n).collect();
    next.push(0);
    let mut prev: Vec<usize> = Vec::with_capacity(n + 1);
    prev.push(head);
    prev.extend(0..n - 1);
    prev.push(n - 1);
    next[head] = 0;
    // `next[n - 1] == n` marks the end (the sentinel is never a successor otherwise).
    next[n - 1] = usize::MAX;
    let mut return_of = vec![0usize; ops.len()];
    for (i, e) in events.iter().enumerate() {
        if !e.is_call {
            return_of[e.op] = i;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        let (p, nx) = (prev[i], next[i]);
        next[p] = nx;
        if nx != usize::MAX {
            prev[nx] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        let (p, nx) = (prev[i], next[i]);
        next[p] = i;
        if nx != usize::MAX {
            prev[nx] = i;
        }
    };

    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, Option<V>)> = HashSet::new();
    // Each frame: the call event lifted and the state before it.
    // Each frame: the call event lifted, the state before it, and whether it was forced (a
    // read-only operation, which needs no alternatives: see below).
    let mut stack: Vec<(usize, Option<V>, bool)> = Vec::new();
    let mut state = initial;
    let mut entry = next[head];
    let mut steps = 0u64;
    let mut deepest: Option<(usize, usize, Option<V>)> = None;

    while next[head] != usize::MAX {
        steps += 1;
        if steps > max_steps {
            return Verdict::Inconclusive(Inconclusive { steps });
        }
        // What to do at this point of the search: place the call at `entry` (forced or as a
        // choice), or backtrack.
        let mut place: Option<(usize, Option<V>, bool)> = None;
        let mut backtrack = false;
        if entry == next[head] {
            // A fresh configuration. A read-only operation (a read, a refused compare-and-set)
            // that may go next and holds in this state goes next without branching: moving it
            // to the front of any linearization of the rest keeps that linearization valid (it
            // changes no state, and nothing still open had to precede it), so if placing it
            // first fails, the configuration fails. This keeps the many permissive reads and
            // refusals of a contended key from multiplying the search.
            let mut e = entry;
            while e != usize::MAX && events[e].is_call {
                let op = &ops[events[e].op];
                if read_only(op) && apply(&state, &op.call, &op.outcome).is_some() {
                    let mut set = linearized.clone();
                    set[events[e].op / 64] |= 1 << (events[e].op % 64);
                    if cache.insert((set, state.clone())) {
                        place = Some((e, state.clone(), true));
                    } else {
                        backtrack = true;
                    }
                    break;
                }
                e = next[e];
            }
        }
        if place.is_none() && !backtrack {
            let event = events[entry];
            if event.is_call {
                let op = &ops[event.op];
                let fresh = apply(&state, &op.call, &op.outcome).and_then(|after| {
                    let mut set = linearized.clone();
                    set[event.op / 64] |= 1 << (event.op % 64);
                    cache.insert((set, after.clone())).then_some(after)
                });
                match fresh {
                    Some(after) => place = Some((entry, after, false)),
                    None => entry = next[entry],
                }
            } else {
                // The first open return: its operation must have been placed by now.
                backtrack = true;
            }
        }
        if let Some((call_entry, after, forced)) = place {
            let op = events[call_entry].op;
            linearized[op / 64] |= 1 << (op % 64);
            stack.push((call_entry, std::mem::replace(&mut state, after), forced));
            unlink(&mut next, &mut prev, call_entry);
            unlink(&mut next, &mut prev, return_of[op]);
            entry = next[head];
        } else if backtrack {
            if deepest
                .as_ref()
                .is_none_or(|(placed, ..)| stack.len() > *placed)
            {
                let stuck = events[first_return(&events, &next, head)].op;
                deepest = Some((stack.len(), stuck, state.clone()));
            }
            // Undo forced placements, then the latest choice, and try the next alternative.
            loop {
                let Some((call_entry, before, forced)) = stack.pop() else {
                    let (placed, stuck, state) = deepest
                        .take()
                        .expect("a backtrack records the deepest point");
                    return Verdict::NotLinearizable(Violation {
                        reason: format!(
                            "{placed} operations placed, then {:?} fits nowhere (the register held {state:?})",
                            ops[stuck]
                        ),
                    });
                };
                let op = events[call_entry].op;
                linearized[op / 64] &= !(1 << (op % 64));
                state = before;
                relink(&mut next, &mut prev, return_of[op]);
                relink(&mut next, &mut prev, call_entry);
                if !forced {
                    entry = next[call_entry];
                    break;
                }
            }
        }
    }
    Verdict::Linearizable
}

/// Whether an operation leaves the register as it found it whatever the state.
fn read_only<V>(op: &Operation<V>) -> bool {
    matches!(
        (&op.call, &op.outcome),
        (Call::Read, _) | (Call::CompareAndSet { .. }, Outcome::Refused)
    )
}

/// The first return event still in the list: the operation that must be placed next at the
/// latest.
fn first_return(events: &[Event], next: &[usize], head: usize) -> usize {
    let mut e = next[head];
    while events[e].is_call {
        e = next[e];
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(client, invoked, completed, call, outcome)`: one operation of a hand-built history.
    type Row = (usize, u64, u64, Call<u32>, Outcome<u32>);

    /// A compare-and-set call: set `new` if the value is `expected`.
    fn cas(expected: Option<u32>, new: u32) -> Call<u32> {
        Cas { expected, new }
    }

    fn history(rows: &[Row]) -> Vec<Operation<u32>> {
        rows.iter()
            .map(|(client, invoked, completed, call, outcome)| Operation {
                client: *client,
                invoked: *invoked,
                completed: *completed,
                call: call.clone(),
                outcome: outcome.clone(),
            })
            .collect()
    }

    /// The verdict of the search and, where it applies, of the zone test, which must agree.
    fn linearizable(rows: &[Row]) -> bool {
        let ops = history(rows);
        let searched = match check_search(None, &ops, 1_000_000) {
            Verdict::Linearizable => true,
            Verdict::NotLinearizable(_) => false,
            Verdict::Inconclusive(i) => panic!("inconclusive after {} steps", i.steps),
        };
        if let Some(zones) = check_zones(&None, &ops) {
            assert_eq!(
                zones.is_linearizable(),
                searched,
                "zones and search disagree"
            );
        }
        searched
    }

    use Call::{CompareAndSet as Cas, Read, Write};
    use Outcome::{Done, Read as Saw, Refused, Unknown};

    #[test]
    fn accepts_sequential_and_overlapping_histories() {
        assert!(linearizable(&[]));
        assert!(linearizable(&[
            (0, 0, 1, Read, Saw(None)),
            (0, 2, 3, Write(1), Done),
            (1, 4, 5, Read, Saw(Some(1))),
            (1, 6, 7, cas(Some(1), 2), Done),
            (0, 8, 9, cas(Some(1), 3), Refused),
            (0, 10, 11, Read, Saw(Some(2))),
        ]));
        // Overlapping writes may take effect in either order; reads inside the overlap see
        // them in the order the register chose.
        assert!(linearizable(&[
            (0, 0, 10, Write(1), Done),
            (1, 0, 10, Write(2), Done),
            (2, 1, 2, Read, Saw(Some(2))),
            (2, 3, 4, Read, Saw(Some(1))),
            (3, 11, 12, Read, Saw(Some(1))),
        ]));
        // A write that overlaps a read may or may not be seen by it.
        assert!(linearizable(&[
            (0, 0, 10, Write(1), Done),
            (1, 2, 3, Read, Saw(None)),
        ]));
        assert!(linearizable(&[
            (0, 0, 10, Write(1), Done),
            (1, 2, 3, Read, Saw(Some(1))),
        ]));
        // Two creates from "absent": one wins, the other is refused.
        assert!(linearizable(&[
            (0, 0, 5, cas(None, 1), Done),
            (1, 0, 5, cas(None, 2), Refused),
            (2, 6, 7, Read, Saw(Some(1))),
        ]));
    }

    #[test]
    fn rejects_a_stale_read() {
        assert!(!linearizable(&[
            (0, 0, 1, Write(1), Done),
            (0, 2, 3, Write(2), Done),
            (1, 4, 5, Read, Saw(Some(1))),
        ]));
        // Sequentially consistent but not linearizable: once a read saw the new value, a later
        // read may not see the old one.
        assert!(!linearizable(&[
            (0, 0, 10, Write(1), Done),
            (1, 1, 2, Read, Saw(Some(1))),
            (2, 3, 4, Read, Saw(None)),
        ]));
    }

    #[test]
    fn rejects_two_successful_compare_and_sets_from_one_old_value() {
        assert!(!linearizable(&[
            (0, 0, 1, Write(1), Done),
            (1, 2, 10, cas(Some(1), 2), Done),
            (2, 2, 10, cas(Some(1), 3), Done),
        ]));
        assert!(!linearizable(&[
            (0, 0, 5, cas(None, 1), Done),
            (1, 0, 5, cas(None, 2), Done),
        ]));
    }

    #[test]
    fn rejects_a_read_of_a_value_never_written() {
        assert!(!linearizable(&[
            (0, 0, 10, Write(1), Done),
            (1, 1, 2, Read, Saw(Some(7))),
        ]));
    }

    #[test]
    fn rejects_a_refused_compare_and_set_that_should_have_won() {
        assert!(!linearizable(&[
            (0, 0, 1, Write(1), Done),
            (1, 2, 3, cas(Some(1), 2), Refused),
        ]));
    }

    #[test]
    fn unknown_outcomes_may_land_late_or_never() {
        // A write that timed out may be seen after its invocation, even much later ...
        assert!(linearizable(&[
            (0, 0, 1, Write(1), Unknown),
            (1, 50, 51, Read, Saw(Some(1))),
        ]));
        // ... or never.
        assert!(linearizable(&[
            (0, 0, 1, Write(1), Unknown),
            (1, 50, 51, Read, Saw(None)),
        ]));
        // But not before it was invoked.
        assert!(!linearizable(&[
            (1, 0, 1, Read, Saw(Some(1))),
            (0, 5, 6, Write(1), Unknown),
        ]));
        // Once seen and overwritten it cannot come back.
        assert!(!linearizable(&[
            (0, 0, 1, Write(1), Unknown),
            (1, 2, 3, Read, Saw(Some(1))),
            (1, 4, 5, Write(2), Done),
            (1, 6, 7, Read, Saw(Some(1))),
        ]));
        // An unknown compare-and-set lands only if its expectation held.
        assert!(!linearizable(&[
            (0, 0, 1, Write(1), Done),
            (1, 2, 3, cas(Some(9), 2), Unknown),
            (0, 4, 5, Read, Saw(Some(2))),
        ]));
        // An unknown read constrains nothing.
        assert!(linearizable(&[
            (0, 0, 1, Write(1), Done),
            (1, 2, 3, Read, Unknown),
        ]));
    }

    #[test]
    fn many_concurrent_writers_stay_tractable() {
        // 12 overlapping writes that a reader sees in the reverse of their list order, the worst
        // order for the search: linearizable, and found within the step budget thanks to
        // memoisation (without it the search would try every ordering of the writes).
        let mut rows = Vec::new();
        for i in 0..12u32 {
            rows.push((i as usize, 0, 1000, Write(i), Done));
        }
        for (j, i) in (0..12u32).rev().enumerate() {
            let t = 10 + 2 * j as u64;
            rows.push((100, t, t + 1, Read, Saw(Some(i))));
        }
        assert!(linearizable(&rows));
        rows.push((101, 2000, 2001, Read, Saw(Some(11))));
        assert!(!linearizable(&rows));
    }

    #[test]
    fn the_zone_test_covers_read_write_histories_and_no_others() {
        let writes_only = history(&[(0, 0, 1, Write(1), Done), (1, 2, 3, Read, Saw(Some(1)))]);
        assert!(check_zones(&None, &writes_only).is_some());
        let with_cas = history(&[(
            0,
            0,
            1,
            Cas {
                expected: None,
                new: 1,
            },
            Done,
        )]);
        assert!(check_zones(&None, &with_cas).is_none());
        let same_value_twice = history(&[(0, 0, 1, Write(1), Done), (1, 2, 3, Write(1), Done)]);
        assert!(check_zones(&None, &same_value_twice).is_none());
        // Where the search gives up, the zone test decides: 300 overlapping writes nobody
        // reads, then reads that see a late one and then an early one (a stale read, which the
        // search could only prove by trying every subset of the writes).
        let mut rows = Vec::new();
        for i in 0..300u32 {
            rows.push((i as usize, i as u64, 10_000 + i as u64, Write(i), Done));
        }
        rows.push((400, 20_000, 20_001, Read, Saw(Some(299))));
        assert!(check(None, &history(&rows), 100_000).is_linearizable());
        rows.push((401, 20_002, 20_003, Read, Saw(Some(7))));
        let stale = history(&rows);
        assert!(matches!(
            check_search(None, &stale, 100_000),
            Verdict::Inconclusive(_)
        ));
        assert!(!check(None, &stale, 100_000).is_linearizable());
    }
}
