use stateify::Stateify;

mod m {}

#[derive(Stateify)]
struct S {
    #[state(nosave, with = "m")]
    a: u32,
}

fn main() {}
