use stateify::Stateify;

#[derive(Stateify)]
#[state(after_load)]
struct S {
    a: u32,
}

fn main() {}
