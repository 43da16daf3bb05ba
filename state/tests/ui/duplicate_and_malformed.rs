use stateify::Stateify;

#[derive(Stateify)]
#[state(type_name = "A", type_name = "B")]
struct S {
    #[state(rename = 5)]
    a: u32,
    #[state(nosave = "yes")]
    b: u32,
}

fn main() {}
