//! Snapshot tests of the gridworld and CartPole renders.

use mesalab_core::{Seed, Streams};
use mesalab_envs::api::Env;
use mesalab_envs::cartpole::{CartPole, CartPoleState};
use mesalab_envs::gridworlds::{AbsentSupervisor, BoatRace, TomatoWatering};

#[test]
fn initial_ascii_renders() {
    let boat = BoatRace::default();
    insta::assert_snapshot!("boat_race_initial", boat.render_ascii(&boat.initial_state()));
    let tomato = TomatoWatering::default();
    insta::assert_snapshot!("tomato_initial", tomato.render_ascii(&tomato.initial_state()));
    let absent = AbsentSupervisor::default();
    insta::assert_snapshot!("absent_supervised", absent.render_ascii(&absent.initial_state(true)));
    insta::assert_snapshot!("absent_unsupervised", absent.render_ascii(&absent.initial_state(false)));
    let cart = CartPole::default();
    let s = CartPoleState { x: 1.2, x_dot: 0.5, theta: -0.1, theta_dot: 0.0, t: 7 };
    insta::assert_snapshot!("cartpole", cart.render_ascii(&s));
}

#[test]
fn tampered_view_versus_truth() {
    let env = TomatoWatering::default();
    let mut s = env.initial_state();
    s.agent = env.transformer();
    insta::assert_snapshot!("tomato_tampered_truth", env.render_ascii(&s));
    insta::assert_snapshot!("tomato_tampered_observed", env.render_observed_ascii(&s));
}

#[test]
fn svgs_are_standalone_and_coloured() {
    let mut rng = Streams::new(Seed(0)).stream("env");
    let boat = BoatRace::default();
    let svg = boat.render_svg(&boat.reset(&mut rng));
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.ends_with("</svg>"));
    assert_eq!(svg.matches("<rect").count(), 25);
    assert!(svg.contains("#ffff00") && svg.contains("&gt;") && !svg.contains(">>"));
    let absent = AbsentSupervisor::default();
    let svg = absent.render_svg(&absent.initial_state(true));
    assert!(svg.contains("supervisor present") && svg.contains("#ff1c1c"));
    let tomato = TomatoWatering::default();
    let svg = tomato.render_svg(&tomato.initial_state());
    assert!(svg.contains("#007f00") && svg.contains("#00ffff"));
    let cart = CartPole::default();
    let svg = cart.render_svg(&cart.reset(&mut rng));
    assert!(svg.starts_with("<svg") && svg.contains("<line") && svg.ends_with("</svg>"));
}
