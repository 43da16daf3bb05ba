//! An ordered worker pool: jobs go in numbered, results come out in the
//! order the jobs went in, whatever order the workers finish them.
//!
//! The caller bounds the jobs in flight (it asks [`Ordered::in_flight`]
//! before submitting), so memory never grows with the input. A caller that
//! waits for a result first takes queued jobs and runs them itself, so with
//! `threads` = 2 the caller and one spawned worker share the work, and with
//! `threads` = 1 every job runs inline at submission.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};

const HELP_BACKLOG: usize = 2;

/// A job's outcome: its result, or the message of a panic inside it.
pub(crate) type Outcome<R> = Result<R, String>;

struct Workers<J, R> {
    jobs: Option<Sender<(u64, J)>>,
    /// The workers' queue, from which a waiting caller takes jobs too.
    queue: Receiver<(u64, J)>,
    done: Receiver<(u64, Outcome<R>)>,
    threads: Vec<JoinHandle<()>>,
}

pub(crate) struct Ordered<J, R> {
    run: fn(J) -> R,
    workers: Option<Workers<J, R>>,
    /// Slot `i` holds the outcome of job `next_out + i` once it is done.
    ready: VecDeque<Option<Outcome<R>>>,
    next_in: u64,
    next_out: u64,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a worker thread panicked".into())
}

impl<J: Send + 'static, R: Send + 'static> Ordered<J, R> {
    /// A pool of `threads` threads running `run`: the caller and
    /// `threads - 1` spawned workers (0 or 1: the caller alone).
    pub fn new(threads: usize, name: &str, run: fn(J) -> R) -> Self {
        let workers = threads.saturating_sub(1);
        let workers = (workers > 0).then(|| {
            let (jobs, inbox) = unbounded::<(u64, J)>();
            let (outbox, done) = unbounded();
            let threads = (0..workers)
                .filter_map(|i| {
                    let inbox = inbox.clone();
                    let outbox = outbox.clone();
                    std::thread::Builder::new()
                        .name(format!("{name}-{i}"))
                        .spawn(move || {
                            for (seq, job) in inbox {
                                let r = catch_unwind(AssertUnwindSafe(|| run(job)))
                                    .map_err(panic_message);
                                if outbox.send((seq, r)).is_err() {
                                    break;
                                }
                            }
                        })
                        .ok()
                })
                .collect::<Vec<_>>();
            Workers {
                jobs: Some(jobs),
                queue: inbox,
                done,
                threads,
            }
        });
        // A system that cannot start a single thread still works, inline.
        let workers = workers.filter(|w| !w.threads.is_empty());
        Ordered {
            run,
            workers,
            ready: VecDeque::new(),
            next_in: 0,
            next_out: 0,
        }
    }

    /// Threads doing the work: the caller and the workers actually started.
    pub fn threads(&self) -> usize {
        1 + self.workers.as_ref().map_or(0, |w| w.threads.len())
    }

    /// Jobs submitted whose results were not taken yet.
    pub fn in_flight(&self) -> usize {
        (self.next_in - self.next_out) as usize
    }

    pub fn submit(&mut self, job: J) {
        let seq = self.next_in;
        self.next_in += 1;
        let sent = match &self.workers {
            Some(Workers { jobs: Some(tx), .. }) => {
                tx.send((seq, job)).map_err(|e| e.into_inner().1)
            }
            _ => Err(job),
        };
        let slot = match sent {
            Ok(()) => None,
            // Inline, or the workers are gone: run it here.
            Err(job) => {
                Some(catch_unwind(AssertUnwindSafe(|| (self.run)(job))).map_err(panic_message))
            }
        };
        self.ready.push_back(slot);
    }

    /// The outcome of the oldest job not taken yet, waiting for it if
    /// needed; `None` when nothing is in flight.
    pub fn next(&mut self) -> Option<Outcome<R>> {
        if self.in_flight() == 0 {
            return None;
        }
        while matches!(self.ready.front(), Some(None)) {
            let received = match &self.workers {
                Some(w) => match if w.queue.len() >= HELP_BACKLOG {
                    w.queue.try_recv().ok()
                } else {
                    None
                } {
                    // Rather than wait, do a queued job here.
                    Some((seq, job)) => Some((
                        seq,
                        catch_unwind(AssertUnwindSafe(|| (self.run)(job))).map_err(panic_message),
                    )),
                    None => w.done.recv().ok(),
                },
                None => None,
            };
            let Some((seq, outcome)) = received else {
                // Every worker is gone (cannot happen while we hold the
                // job sender, but never wait forever on it).
                self.ready[0] = Some(Err("the worker threads stopped".into()));
                break;
            };
            if let Some(slot) = self.ready.get_mut((seq - self.next_out) as usize) {
                *slot = Some(outcome);
            }
        }
        self.next_out += 1;
        self.ready.pop_front().flatten()
    }
}

impl<J, R> Drop for Ordered<J, R> {
    fn drop(&mut self) {
        if let Some(w) = &mut self.workers {
            // Closing the job channel ends every worker's loop.
            w.jobs = None;
            for t in w.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow_square(x: u64) -> u64 {
        // Later jobs finish first, so order must come from the pool.
        std::thread::sleep(std::time::Duration::from_micros(50 * (8 - x % 8)));
        x * x
    }

    #[test]
    fn results_come_out_in_submission_order() {
        for threads in [1, 2, 4] {
            let mut p = Ordered::new(threads, "test", slow_square);
            let mut out = Vec::new();
            for x in 0..40 {
                p.submit(x);
                if p.in_flight() >= 6 {
                    out.push(p.next().unwrap().unwrap());
                }
            }
            while let Some(r) = p.next() {
                out.push(r.unwrap());
            }
            assert_eq!(out, (0..40).map(|x| x * x).collect::<Vec<_>>());
            assert_eq!(p.threads(), threads);
        }
    }

    fn explode(x: u64) -> u64 {
        if x == 2 {
            panic!("job {x} failed");
        }
        x
    }

    #[test]
    fn a_panicking_job_is_an_error_in_its_place() {
        for threads in [1, 3] {
            let mut p = Ordered::new(threads, "test", explode);
            for x in 0..4 {
                p.submit(x);
            }
            let out: Vec<_> = std::iter::from_fn(|| p.next()).collect();
            assert_eq!(out[0], Ok(0));
            assert_eq!(out[1], Ok(1));
            assert_eq!(out[2], Err("job 2 failed".to_string()));
            assert_eq!(out[3], Ok(3));
        }
    }
}
