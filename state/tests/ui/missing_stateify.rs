// A field type without `Stateify`: one error per field, on the field, that
// names the ways out; the culprit inside a container is named.
use std::collections::HashMap;

use stateify::Stateify;

struct Uuid(u128);

#[derive(Stateify)]
struct Player {
    id: Uuid,
    name: String,
    friends: HashMap<String, Vec<Uuid>>,
}

#[derive(Stateify)]
enum Event {
    Join { who: Uuid },
    Leave(u32),
}

fn main() {}
