// `register_dyn!` on a trait without the `AsAny` supertrait.
use stateify::Stateify;

trait Rule {}

#[derive(Stateify)]
struct DoubleXp;
impl Rule for DoubleXp {}

stateify::register_dyn!(dyn Rule { "DoubleXp" => DoubleXp });

fn main() {}
