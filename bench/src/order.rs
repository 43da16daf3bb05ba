//! Graphs whose save order matters: a netstack whose endpoints are reached
//! through tasks' fd tables before the stack that owns them (each
//! endpoint's `Weak` leads to the stack first), and players who own their
//! room while the room lists them weakly.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use stateify::Stateify;

#[derive(Stateify)]
pub struct Endpoint {
    pub id: u32,
    pub port: u16,
    pub snd_nxt: u32,
    pub stack: Weak<RefCell<NetStack>>,
}

#[derive(Stateify)]
pub struct NetStack {
    pub name: String,
    pub endpoints: Vec<Rc<RefCell<Endpoint>>>,
}

#[derive(Stateify)]
pub struct Task {
    pub pid: u32,
    pub fds: Vec<Rc<RefCell<Endpoint>>>,
}

/// `endpoints` endpoints owned by one stack, spread over tasks of 10 fds.
pub fn netstack(endpoints: u32) -> (Vec<Task>, Rc<RefCell<NetStack>>) {
    let stack = Rc::new(RefCell::new(NetStack {
        name: "netstack".into(),
        endpoints: Vec::new(),
    }));
    let eps: Vec<_> = (0..endpoints)
        .map(|id| {
            Rc::new(RefCell::new(Endpoint {
                id,
                port: (id % 60_000) as u16,
                snd_nxt: id.wrapping_mul(2_654_435_761),
                stack: Rc::downgrade(&stack),
            }))
        })
        .collect();
    stack.borrow_mut().endpoints = eps.clone();
    let tasks = eps
        .chunks(10)
        .enumerate()
        .map(|(pid, fds)| Task {
            pid: pid as u32,
            fds: fds.to_vec(),
        })
        .collect();
    (tasks, stack)
}

/// Breaks the stack's strong references to its endpoints so everything
/// is freed.
pub fn teardown(stack: &Rc<RefCell<NetStack>>) {
    stack.borrow_mut().endpoints.clear();
}

#[derive(Stateify)]
pub struct Room {
    pub id: u32,
    pub occupants: Vec<Weak<RefCell<Player>>>,
}

#[derive(Stateify)]
pub struct Player {
    pub id: u32,
    pub room: Rc<RefCell<Room>>,
}

/// `players` players, two to a room; with `listed`, each room lists its
/// players weakly (every second player is then announced by its room and
/// built on a coroutine), without, the same graph minus those lists.
pub fn players(players: u32, listed: bool) -> Vec<Rc<RefCell<Player>>> {
    let rooms: Vec<_> = (0..players.div_ceil(2))
        .map(|id| {
            Rc::new(RefCell::new(Room {
                id,
                occupants: Vec::new(),
            }))
        })
        .collect();
    (0..players)
        .map(|id| {
            let room = &rooms[id as usize / 2];
            let p = Rc::new(RefCell::new(Player {
                id,
                room: room.clone(),
            }));
            if listed {
                room.borrow_mut().occupants.push(Rc::downgrade(&p));
            }
            p
        })
        .collect()
}
