use stateify::Stateify;

#[derive(Stateify)]
#[state(after_load = relink)]
struct S {
    #[state(rename = 5)]
    a: u32,
    #[state(nosave = "yes")]
    b: u32,
    #[state(default = "not a path")]
    c: u32,
}

fn main() {}
