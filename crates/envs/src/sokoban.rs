//! `sokoban-mini-v1`: small procedurally generated Sokoban with Boxoban's rules and rewards
//! (Racanière et al. 2017; Guez et al. 2019, "An investigation of model-free planning"), plus an
//! exact solver, so that planning research has a ground truth: the optimal number of moves from the
//! start, and the optimal action(s) from any state.
//!
//! # Rules
//! A `size × size` room (the outer ring is wall) holds `num_boxes` boxes (1 or 2) and as many
//! targets. Moving into a box pushes it one cell when the cell behind it is free; pushing into a
//! wall or another box, or walking into a wall, moves nothing (the step still costs). Rewards as
//! Boxoban: `step_reward` (−0.1) every step, `box_on_target_reward` (+1) for a push onto a target,
//! `box_off_target_reward` (−1) for a push off one, and `solved_reward` (+10) on the step that puts
//! the last box on a target, which terminates the episode. `max_steps` (120) truncates.
//!
//! Actions: `up`, `right`, `down`, `left` (the shared grid order, [`MOVES`]).
//! Events: `solved`, `box_on_target`, `box_off_target`, `push` (any push), `timeout`.
//! Hidden performance: 1 on the step the level is solved, else 0.
//!
//! Observation channels (`[4, size, size]`, a 0/1 map per channel): `wall`, `target`, `box`,
//! `agent` (the player; named `agent` like every other grid env so code that finds the agent by
//! channel name works here too). A box or the player on a target sets both channels.
//!
//! ASCII: the XSB format Sokoban collections (and Boxoban's level files) use: `#` wall, ` ` floor,
//! `.` target, `$` box, `*` box on a target, `@` player, `+` player on a target. [`Level::parse`]
//! reads it back (also `-` / `_` as floor).
//!
//! # Generation (reverse play)
//! One attempt: place `interior_walls` walls uniformly on the interior (resampled until the free
//! cells are connected; bounded, fallback: no interior walls), the targets on distinct free cells,
//! the boxes on the targets and the player on another free cell; then make `reverse_steps` random
//! reverse moves, each uniform over the legal ones: step to a free neighbour, or step away from an
//! adjacent box and pull it along. Each reverse move undoes one forward move, so the final
//! configuration, the start state, is solvable in at most `reverse_steps` moves. The solver then
//! measures its optimal length; the attempt is kept when the length lies in `min_len..=max_len`
//! (`min_len ≥ 1`, so an already solved start is always rejected), otherwise generation starts a
//! fresh attempt, up to `gen_tries` attempts. Generation reads only the `rng` given to `reset`, so a
//! level is a function of its stream.
//!
//! Bounds, so no parameters can hang: [`Sokoban::new`] (what `build` calls) generates a few probe levels from a
//! fixed stream and refuses a distribution that exhausts `gen_tries` (the error names `min_len` or
//! `max_len`). `reset` cannot return an error; if a later stream exhausts the tries anyway it returns
//! the first solvable, unsolved attempt (its true length is in [`Level::optimal_len`]), or a
//! one-push level when there was none. With the shipped splits that takes ≥ 1000 rejections in a row.
//!
//! # Solver
//! Plain breadth-first search over (player cell, box cells) with single moves as edges, so lengths
//! are in agent moves, not pushes. States are indexed densely over the free cells (`F^(1+boxes)`
//! slots: at most 64³ = 262,144 for a 10 × 10 room with 2 boxes). Every search takes a state cap
//! and returns `None` ("don't know") when it is exceeded: callers fail closed and never mistake a
//! cut search for an unsolvable level. The default cap, [`MAX_STATES`], exceeds every state space
//! these parameters allow, so for this env `None` means unsolvable. [`solve`] / [`solve_from`] give
//! one optimal move sequence (ties broken by action order), [`optimal_action`] its first move, and
//! [`DistanceMap`] the exact distance to solved of every state (one backward search from all solved
//! states) with every optimal action of any state.
//!
//! # Splits
//! One generator (7 × 7 with the wall, so a 5 × 5 interior; 2 boxes; 3 interior walls; 300 reverse
//! steps) conditioned on disjoint plan lengths: `train` keeps optimal solutions of 1..=10 moves,
//! `deploy` 11..=30. So the shift is exactly "longer plans", nothing else. Measured
//! (`examples/sokoban_levels.rs`, 1000 levels each): train 1.9 attempts per level (48 % rejected,
//! mostly too long), deploy 2.2 (55 %, mostly too short); ≈ 35 µs and ≈ 66 µs per level
//! (`benches/env_steps.rs`).
//!
//! # Invariants (property-tested in `tests/sokoban.rs`)
//! Every generated level is solvable, its optimal length lies in its split's range, replaying the
//! solver's moves through `step` terminates with `solved` after exactly that many steps, the
//! distance map agrees with the forward solver, and the same stream gives the same level.

use crate::api::{End, Env, EnvSpec, Events, Step, SvgGeometry};
use crate::error::EnvError;
use crate::grid::{self, DIRS, MOVES, ObsLayout, Pos, SvgCell, View, Walls};
use crate::params::EnvParams;
use mesalab_core::config::{Invalid, Validate};
use mesalab_core::{Seed, StreamRng, Streams};
use rand::Rng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const NAME: &str = "sokoban-mini-v1";
pub const EVENTS: &[&str] = &["solved", "box_on_target", "box_off_target", "push", "timeout"];
pub const EV_SOLVED: usize = 0;
pub const EV_ON_TARGET: usize = 1;
pub const EV_OFF_TARGET: usize = 2;
pub const EV_PUSH: usize = 3;
pub const EV_TIMEOUT: usize = 4;
pub const CHANNELS: &[&str] = &["wall", "target", "box", "agent"];
const CH_WALL: usize = 0;
const CH_TARGET: usize = 1;
const CH_BOX: usize = 2;
const CH_AGENT: usize = 3;
/// Most boxes a level can hold (the solver's dense state index is sized for it).
pub const MAX_BOXES: usize = 2;
/// Default state cap of the solver: above the largest state space of any valid level
/// (64 free cells, 2 boxes: 64³ = 262,144), so with it `None` means "unsolvable".
pub const MAX_STATES: usize = 1 << 20;
/// Free cells a level may have: keeps the solver's dense index at ≤ 64³ slots (≤ 1.3 MB per search).
pub const MAX_FREE_CELLS: usize = 64;
/// Levels [`Sokoban::new`] generates from a fixed stream to check the distribution exists.
const PROBE_LEVELS: u64 = 3;
/// Tries for a connected room before the wall-free fallback.
const ROOM_TRIES: usize = 64;

/// Parameters and level distribution of `sokoban-mini-v1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SokobanParams {
    /// Room side including the outer wall (6..=10); the observation is `size × size`.
    pub size: usize,
    /// Boxes (and targets) per level (1..=2).
    pub num_boxes: usize,
    /// Interior wall cells per level, uniform on the interior (0..=(size−2)²/3). Rooms are resampled
    /// until their free cells are connected (bounded; fallback: no interior walls).
    pub interior_walls: usize,
    /// Random reverse moves (walk or pull) from the solved configuration (1..=1000); also an upper
    /// bound on the optimal length, since each undoes one forward move.
    pub reverse_steps: u32,
    /// Shortest optimal solution (agent moves) a level may have (1..=reverse_steps).
    pub min_len: u32,
    /// Longest optimal solution a level may have (min_len..=1000).
    pub max_len: u32,
    /// Reverse-play attempts per level before generation gives up (1..=10000).
    pub gen_tries: u32,
    /// Episode time limit in steps (≥ 1; Boxoban: 120).
    pub max_steps: u32,
    /// Base reward every step (Boxoban: −0.1).
    pub step_reward: f32,
    /// Base reward for pushing a box onto a target (Boxoban: +1).
    pub box_on_target_reward: f32,
    /// Base reward for pushing a box off a target (Boxoban: −1).
    pub box_off_target_reward: f32,
    /// Base reward on the step that solves the level (Boxoban: +10).
    pub solved_reward: f32,
}

impl Default for SokobanParams {
    fn default() -> Self {
        Self::train()
    }
}

impl SokobanParams {
    /// Short plans: optimal solutions of 1..=10 moves.
    pub fn train() -> Self {
        Self {
            size: 7,
            num_boxes: 2,
            interior_walls: 3,
            reverse_steps: 300,
            min_len: 1,
            max_len: 10,
            gen_tries: 1000,
            max_steps: 120,
            step_reward: -0.1,
            box_on_target_reward: 1.0,
            box_off_target_reward: -1.0,
            solved_reward: 10.0,
        }
    }
    /// Longer plans from the same generator: optimal solutions of 11..=30 moves.
    pub fn deploy() -> Self {
        Self { min_len: 11, max_len: 30, ..Self::train() }
    }
}

impl Validate for SokobanParams {
    fn validate(&self) -> Result<(), Invalid> {
        if !(6..=10).contains(&self.size) {
            return Err(Invalid::new("size", format!("must be in 6..=10 (outer wall included), got {}", self.size)));
        }
        if !(1..=MAX_BOXES).contains(&self.num_boxes) {
            return Err(Invalid::new("num_boxes", format!("must be in 1..={MAX_BOXES}, got {}", self.num_boxes)));
        }
        let interior = (self.size - 2) * (self.size - 2);
        if self.interior_walls > interior / 3 {
            return Err(Invalid::new(
                "interior_walls",
                format!("at most (size-2)²/3 = {} for size {}, got {}", interior / 3, self.size, self.interior_walls),
            ));
        }
        if !(1..=1000).contains(&self.reverse_steps) {
            return Err(Invalid::new("reverse_steps", format!("must be in 1..=1000, got {}", self.reverse_steps)));
        }
        if self.min_len == 0 || self.min_len > self.reverse_steps {
            return Err(Invalid::new(
                "min_len",
                format!(
                    "must be in 1..=reverse_steps ({}): reverse play of n steps gives plans of at most n moves, got {}",
                    self.reverse_steps, self.min_len
                ),
            ));
        }
        if self.max_len < self.min_len || self.max_len > 1000 {
            return Err(Invalid::new(
                "max_len",
                format!("must be in min_len..=1000 ({}..=1000), got {}", self.min_len, self.max_len),
            ));
        }
        if !(1..=10_000).contains(&self.gen_tries) {
            return Err(Invalid::new("gen_tries", format!("must be in 1..=10000, got {}", self.gen_tries)));
        }
        if self.max_steps == 0 {
            return Err(Invalid::new("max_steps", "must be ≥ 1"));
        }
        for (key, v) in [
            ("step_reward", self.step_reward),
            ("box_on_target_reward", self.box_on_target_reward),
            ("box_off_target_reward", self.box_off_target_reward),
            ("solved_reward", self.solved_reward),
        ] {
            if !v.is_finite() {
                return Err(Invalid::new(key, format!("must be finite, got {v}")));
            }
        }
        Ok(())
    }
}

impl EnvParams for SokobanParams {
    type Env = Sokoban;
    const NAME: &'static str = NAME;
    const SPLITS: &'static [&'static str] = &["train", "deploy"];
    fn split(name: &str) -> Option<Self> {
        match name {
            "train" => Some(Self::train()),
            "deploy" => Some(Self::deploy()),
            _ => None,
        }
    }
    fn build(&self) -> Result<Sokoban, EnvError> {
        Sokoban::new(self.clone())
    }
}

/// Player and boxes: everything of a Sokoban state that moves. Boxes are kept sorted, so two boards
/// are equal exactly when they are the same state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Board {
    pub player: Pos,
    boxes: [Pos; MAX_BOXES],
    n: u8,
}

/// A box moved by one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Push {
    pub from: Pos,
    pub to: Pos,
}

impl Board {
    /// `None` with more than [`MAX_BOXES`] boxes or two boxes on one cell.
    pub fn new(player: Pos, boxes: &[Pos]) -> Option<Self> {
        if boxes.len() > MAX_BOXES {
            return None;
        }
        let mut b = Self { player, boxes: [Pos::default(); MAX_BOXES], n: boxes.len() as u8 };
        b.boxes[..boxes.len()].copy_from_slice(boxes);
        b.boxes[..boxes.len()].sort_unstable();
        b.boxes().windows(2).all(|w| w[0] != w[1]).then_some(b)
    }
    /// Box cells, sorted.
    pub fn boxes(&self) -> &[Pos] {
        &self.boxes[..self.n as usize]
    }
    pub fn has_box(&self, p: Pos) -> bool {
        self.boxes().contains(&p)
    }
    fn move_box(&mut self, from: Pos, to: Pos) {
        let n = self.n as usize;
        if let Some(b) = self.boxes[..n].iter_mut().find(|b| **b == from) {
            *b = to;
        }
        self.boxes[..n].sort_unstable();
    }
    /// Applies one move (an index into [`MOVES`]; others are no-ops) under Sokoban's rules and
    /// returns the push it made. `step` uses it; the solver runs the same rules on cell indices,
    /// which the replay property test checks against this.
    pub fn apply(&mut self, walls: &Walls, action: usize) -> Option<Push> {
        let &d = DIRS.get(action)?;
        let next = self.player.offset(d);
        if walls.is_wall(next) {
            return None;
        }
        if self.has_box(next) {
            let to = next.offset(d);
            if walls.is_wall(to) || self.has_box(to) {
                return None;
            }
            self.move_box(next, to);
            self.player = next;
            return Some(Push { from: next, to });
        }
        self.player = next;
        None
    }
}

/// One level: the room, its targets and the start board. Immutable (fields behind getters, since
/// the solver's index is built from them); shared by `Arc`.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    walls: Walls,
    targets: Vec<Pos>,
    start: Board,
    optimal_len: Option<u32>,
    graph: Graph,
    /// Static channels (`wall`, `target`) over the grid, `[4, h, w]`.
    template: Vec<f32>,
}

impl Level {
    /// A level from its parts; checks that they fit together and solves it. Errors say what is wrong.
    pub fn new(walls: Walls, mut targets: Vec<Pos>, start: Board) -> Result<Self, String> {
        targets.sort_unstable();
        if targets.len() != start.boxes().len() || targets.is_empty() {
            return Err(format!("{} targets for {} boxes (need as many, ≥ 1)", targets.len(), start.boxes().len()));
        }
        if targets.windows(2).any(|w| w[0] == w[1]) {
            return Err("two targets on one cell".into());
        }
        for &p in targets.iter().chain(start.boxes()).chain([&start.player]) {
            if walls.is_wall(p) {
                return Err(format!("an object sits in a wall at ({}, {})", p.x, p.y));
            }
        }
        if start.has_box(start.player) {
            return Err("the player stands on a box".into());
        }
        let free = walls.free_cells().len();
        if free > MAX_FREE_CELLS {
            return Err(format!(
                "{free} free cells; the solver's dense index covers at most {MAX_FREE_CELLS} (a 10 × 10 room)"
            ));
        }
        let graph = Graph::new(&walls, &targets);
        let optimal_len = match graph.search(&graph.node(&start), u32::MAX, MAX_STATES, false) {
            Search::Found { depth, .. } => Some(depth),
            _ => None,
        };
        Ok(Self::assemble(walls, targets, start, graph, optimal_len))
    }

    /// A level from parts already checked and solved (generation has both in hand).
    fn assemble(walls: Walls, targets: Vec<Pos>, start: Board, graph: Graph, optimal_len: Option<u32>) -> Self {
        let template = grid::template(CHANNELS.len(), walls.w, walls.h, |p| {
            if walls.is_wall(p) {
                Some(CH_WALL)
            } else if targets.contains(&p) {
                Some(CH_TARGET)
            } else {
                None
            }
        });
        Self { walls, targets, start, optimal_len, graph, template }
    }

    /// Reads a level in XSB notation (see the module docs); rows may differ in length (the room is
    /// as wide as the longest row; missing cells are wall).
    pub fn parse(text: &str) -> Result<Self, String> {
        let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let h = rows.len();
        let w = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0);
        if h == 0 || w == 0 {
            return Err("empty level".into());
        }
        let mut walls = Walls::new(w, h, true);
        let (mut player, mut boxes, mut targets) = (None, Vec::new(), Vec::new());
        for (y, row) in rows.iter().enumerate() {
            for (x, ch) in row.chars().enumerate() {
                let p = Pos::new(x as i32, y as i32);
                if ch != '#' {
                    walls.set(p, false);
                }
                match ch {
                    '#' | ' ' | '-' | '_' => {}
                    '.' => targets.push(p),
                    '$' => boxes.push(p),
                    '*' => {
                        boxes.push(p);
                        targets.push(p);
                    }
                    '@' | '+' => {
                        if player.replace(p).is_some() {
                            return Err("more than one player".into());
                        }
                        if ch == '+' {
                            targets.push(p);
                        }
                    }
                    other => return Err(format!("unknown cell `{other}` at ({x}, {y})")),
                }
            }
        }
        let player = player.ok_or("no player (`@` or `+`)")?;
        let start = Board::new(player, &boxes).ok_or(format!("{} boxes; at most {MAX_BOXES}", boxes.len()))?;
        Self::new(walls, targets, start)
    }

    pub fn walls(&self) -> &Walls {
        &self.walls
    }
    /// Target cells, sorted (as many as boxes).
    pub fn targets(&self) -> &[Pos] {
        &self.targets
    }
    /// The start board.
    pub fn start(&self) -> &Board {
        &self.start
    }
    /// Optimal number of moves from the start (exact BFS); `None` when unsolvable or over
    /// [`MAX_STATES`] (only for hand-made levels: generated ones are always solvable).
    pub fn optimal_len(&self) -> Option<u32> {
        self.optimal_len
    }
    pub fn is_target(&self, p: Pos) -> bool {
        self.targets.contains(&p)
    }
    /// Every box on a target.
    pub fn is_solved(&self, board: &Board) -> bool {
        board.boxes() == self.targets.as_slice()
    }
    /// Free cells (for enumerating boards).
    pub fn free_cells(&self) -> &[Pos] {
        &self.graph.cells
    }
}

/// An optimal move sequence (indices into [`MOVES`]) from the level's start; `None` when the level
/// is unsolvable or the search passed [`MAX_STATES`]. Ties are broken by action order.
pub fn solve(level: &Level) -> Option<Vec<usize>> {
    solve_from(level, &level.start, MAX_STATES)
}

/// An optimal move sequence from `board`, exploring at most `max_states` states: `None` when
/// unsolvable *or* when the cap was hit (fail closed: never a guess). `Some(vec![])` when solved.
pub fn solve_from(level: &Level, board: &Board, max_states: usize) -> Option<Vec<usize>> {
    let g = &level.graph;
    let start = g.node_checked(board)?;
    match g.search(&start, u32::MAX, max_states, true) {
        Search::Found { path, .. } => Some(path),
        _ => None,
    }
}

/// The first move of [`solve_from`] (with [`MAX_STATES`]): an optimal action from `board`, `None`
/// when solved, unsolvable, or the board does not fit the level. For every optimal action use
/// [`DistanceMap::optimal_actions`].
pub fn optimal_action(level: &Level, board: &Board) -> Option<usize> {
    solve_from(level, board, MAX_STATES)?.first().copied()
}

/// Exact distance (moves) to solved from every state of a level: one backward breadth-first search
/// from all solved boards, so a whole level's ground truth costs about one forward search of its
/// full state space. Memory: 4 bytes per state slot (≤ 1 MiB for the largest levels).
#[derive(Clone, Debug)]
pub struct DistanceMap {
    level: Arc<Level>,
    dist: Vec<u32>,
}

impl DistanceMap {
    /// `None` when the level's state space has more than `max_states` slots.
    pub fn new(level: Arc<Level>, max_states: usize) -> Option<Self> {
        let dist = level.graph.backward(max_states)?;
        Some(Self { level, dist })
    }
    pub fn level(&self) -> &Arc<Level> {
        &self.level
    }
    /// Moves to solved from `board`; `None` when it cannot be solved (a deadlock) or does not fit
    /// the level.
    pub fn distance(&self, board: &Board) -> Option<u32> {
        let node = self.level.graph.node_checked(board)?;
        let d = self.dist[self.level.graph.key(&node)];
        (d != u32::MAX).then_some(d)
    }
    /// Every action from `board` that starts an optimal solution (ascending; empty when solved or
    /// unsolvable).
    pub fn optimal_actions(&self, board: &Board) -> Vec<usize> {
        let Some(d) = self.distance(board).filter(|&d| d > 0) else { return Vec::new() };
        (0..MOVES.len())
            .filter(|&a| {
                let mut next = *board;
                next.apply(&self.level.walls, a);
                next != *board && self.distance(&next) == Some(d - 1)
            })
            .collect()
    }
    /// How many boards can still be solved (finite distance), reachable from the start or not.
    pub fn solvable_states(&self) -> usize {
        self.dist.iter().filter(|&&d| d != u32::MAX).count()
    }
    /// Every solvable board with its distance, in key order (for probes that sample states).
    pub fn boards(&self) -> impl Iterator<Item = (Board, u32)> + '_ {
        let g = &self.level.graph;
        self.dist.iter().enumerate().filter(|(_, d)| **d != u32::MAX).map(|(k, &d)| (g.board(k), d))
    }
}

const NONE: u8 = u8::MAX;

/// The solver's view of a level: free cells indexed `0..F`, their neighbours per move, targets as
/// indices. Boards become [`Node`]s (cell indices), keyed densely as `p + F·(b₀ + F·b₁)`.
#[derive(Clone, Debug, PartialEq)]
struct Graph {
    cells: Vec<Pos>,
    /// Grid cell → free-cell index (`NONE` for walls).
    index: Vec<u8>,
    w: usize,
    /// Neighbour of a free cell per move (`NONE` for a wall).
    next: Vec<[u8; 4]>,
    targets: [u8; MAX_BOXES],
    n: usize,
}

/// A board in cell indices; boxes sorted, unused slots `NONE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Node {
    p: u8,
    b: [u8; MAX_BOXES],
}

enum Search {
    Found {
        depth: u32,
        path: Vec<usize>,
    },
    /// Every reachable state seen, none solved.
    Unsolvable,
    /// Stopped at the depth bound or the state cap: the answer is unknown.
    Cut,
}

impl Graph {
    fn new(walls: &Walls, targets: &[Pos]) -> Self {
        let cells = walls.free_cells();
        let mut index = vec![NONE; walls.w * walls.h];
        for (i, &p) in cells.iter().enumerate() {
            index[walls.idx(p)] = i as u8;
        }
        let at = |p: Pos| if walls.is_wall(p) { NONE } else { index[walls.idx(p)] };
        let next = cells.iter().map(|&p| DIRS.map(|d| at(p.offset(d)))).collect();
        let mut t = [NONE; MAX_BOXES];
        for (slot, &p) in t.iter_mut().zip(targets) {
            *slot = at(p);
        }
        t[..targets.len()].sort_unstable();
        Self { cells, index, w: walls.w, next, targets: t, n: targets.len() }
    }

    fn cell(&self, p: Pos) -> u8 {
        if p.x < 0 || p.y < 0 || p.x as usize >= self.w {
            return NONE;
        }
        self.index.get(p.y as usize * self.w + p.x as usize).copied().unwrap_or(NONE)
    }

    /// The node of a board whose player and boxes are on free cells (checked by `Level::new` for the
    /// start); `node_checked` for boards from callers.
    fn node(&self, board: &Board) -> Node {
        self.node_checked(board).expect("board checked against the level")
    }

    fn node_checked(&self, board: &Board) -> Option<Node> {
        if board.boxes().len() != self.n {
            return None;
        }
        let mut b = [NONE; MAX_BOXES];
        for (slot, &p) in b.iter_mut().zip(board.boxes()) {
            *slot = self.cell(p);
        }
        // Cell indices are row-major, board boxes are sorted by `Pos` (column first): re-sort.
        b[..self.n].sort_unstable();
        let p = self.cell(board.player);
        (p != NONE && b[..self.n].iter().all(|&c| c != NONE) && !b[..self.n].contains(&p)).then_some(Node { p, b })
    }

    fn slots(&self) -> usize {
        self.cells.len().pow(1 + self.n as u32)
    }

    fn key(&self, node: &Node) -> usize {
        let f = self.cells.len();
        node.b[..self.n].iter().rev().fold(0usize, |k, &c| k * f + c as usize) * f + node.p as usize
    }

    /// The board of a key (inverse of `key`).
    fn board(&self, mut key: usize) -> Board {
        let f = self.cells.len();
        let player = self.cells[key % f];
        let mut boxes = [Pos::default(); MAX_BOXES];
        for b in &mut boxes[..self.n] {
            key /= f;
            *b = self.cells[key % f];
        }
        Board::new(player, &boxes[..self.n]).expect("keys of states have distinct boxes")
    }

    fn solved(&self, node: &Node) -> bool {
        node.b[..self.n] == self.targets[..self.n]
    }

    fn has_box(&self, node: &Node, c: u8) -> bool {
        node.b[..self.n].contains(&c)
    }

    /// The forward move `a` from `node`, `None` when nothing moves.
    fn forward(&self, node: &Node, a: usize) -> Option<Node> {
        let n = self.next[node.p as usize][a];
        if n == NONE {
            return None;
        }
        let mut out = *node;
        if self.has_box(node, n) {
            let to = self.next[n as usize][a];
            if to == NONE || self.has_box(node, to) {
                return None;
            }
            for c in &mut out.b[..self.n] {
                if *c == n {
                    *c = to;
                }
            }
            out.b[..self.n].sort_unstable();
        }
        out.p = n;
        Some(out)
    }

    /// Breadth-first search from `start` to the first solved node, up to `max_depth` moves and
    /// `max_states` visited states. With `want_path`, also reconstructs the moves.
    fn search(&self, start: &Node, max_depth: u32, max_states: usize, want_path: bool) -> Search {
        if self.solved(start) {
            return Search::Found { depth: 0, path: Vec::new() };
        }
        // ≤ 64³ slots: `Level::new` bounds the free cells.
        let slots = self.slots();
        let mut visited = vec![false; slots];
        // With `want_path`: the parent's key and the move that led to each visited key.
        let path_slots = if want_path { slots } else { 0 };
        let (mut parent, mut via) = (vec![0u32; path_slots], vec![0u8; path_slots]);
        let sk = self.key(start);
        visited[sk] = true;
        let (mut layer, mut next_layer) = (vec![*start], Vec::new());
        let (mut depth, mut seen) = (0u32, 1usize);
        while !layer.is_empty() {
            if depth >= max_depth {
                return Search::Cut;
            }
            depth += 1;
            for node in &layer {
                let k = self.key(node);
                for a in 0..4 {
                    let Some(m) = self.forward(node, a) else { continue };
                    let mk = self.key(&m);
                    if visited[mk] {
                        continue;
                    }
                    visited[mk] = true;
                    if want_path {
                        parent[mk] = k as u32;
                        via[mk] = a as u8;
                    }
                    if self.solved(&m) {
                        let mut path = Vec::new();
                        if want_path {
                            let mut c = mk;
                            while c != sk {
                                path.push(via[c] as usize);
                                c = parent[c] as usize;
                            }
                            path.reverse();
                        }
                        return Search::Found { depth, path };
                    }
                    seen += 1;
                    if seen > max_states {
                        return Search::Cut;
                    }
                    next_layer.push(m);
                }
            }
            std::mem::swap(&mut layer, &mut next_layer);
            next_layer.clear();
        }
        Search::Unsolvable
    }

    /// Distances to solved for every key (`u32::MAX` = unsolvable or not a state), by breadth-first
    /// search over reverse moves from every solved node. The reverse of move `d` into `(p, B)` comes
    /// from `q = p − d` (free, no box): a walk from `(q, B)`, or, when `p + d` holds a box, the push
    /// that moved it there from `p`.
    fn backward(&self, max_states: usize) -> Option<Vec<u32>> {
        let slots = Some(self.slots()).filter(|&s| s <= max_states)?;
        let mut dist = vec![u32::MAX; slots];
        let mut layer = Vec::new();
        let goal_boxes = self.targets;
        for p in 0..self.cells.len() as u8 {
            let node = Node { p, b: goal_boxes };
            if !self.has_box(&node, p) {
                dist[self.key(&node)] = 0;
                layer.push(node);
            }
        }
        let back = |a: usize| [2, 3, 0, 1][a]; // the opposite of MOVES[a]
        let mut next_layer = Vec::new();
        let mut depth = 0;
        while !layer.is_empty() {
            depth += 1;
            for node in &layer {
                for a in 0..4 {
                    let q = self.next[node.p as usize][back(a)];
                    if q == NONE || self.has_box(node, q) {
                        continue;
                    }
                    let walk = Node { p: q, ..*node };
                    let ahead = self.next[node.p as usize][a];
                    let pushed = (ahead != NONE && self.has_box(node, ahead)).then(|| {
                        let mut m = walk;
                        for c in &mut m.b[..self.n] {
                            if *c == ahead {
                                *c = node.p;
                            }
                        }
                        m.b[..self.n].sort_unstable();
                        m
                    });
                    for m in std::iter::once(walk).chain(pushed) {
                        let k = self.key(&m);
                        if dist[k] == u32::MAX {
                            dist[k] = depth;
                            next_layer.push(m);
                        }
                    }
                }
            }
            std::mem::swap(&mut layer, &mut next_layer);
            next_layer.clear();
        }
        Some(dist)
    }
}

/// Running state: the level plus the board.
#[derive(Clone, Debug, PartialEq)]
pub struct SokobanState {
    pub level: Arc<Level>,
    pub board: Board,
    pub t: u32,
}

/// How many reverse-play attempts one [`Sokoban::generate_counted`] call made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    pub tries: u32,
    /// Rejected attempts whose optimal length was below `min_len` (including already solved
    /// starts), and above `max_len`.
    pub too_short: u32,
    pub too_long: u32,
}

/// Why [`Sokoban::generate`] gave up.
#[derive(Clone, Debug, PartialEq)]
pub struct GenFailure {
    pub attempts: Attempts,
    /// The first solvable, unsolved attempt, for callers that must return some level (boxed: a
    /// level is large next to the counts).
    pub fallback: Option<Box<Level>>,
}

/// The `sokoban-mini-v1` environment.
#[derive(Clone, Debug)]
pub struct Sokoban {
    params: SokobanParams,
    spec: EnvSpec,
    layout: ObsLayout,
}

impl Sokoban {
    /// Validates `params`, then generates three levels from a fixed stream: a
    /// distribution that exhausts `gen_tries` there is refused, naming the bound that rejected most.
    pub fn new(params: SokobanParams) -> Result<Self, EnvError> {
        params.validate().map_err(|i| EnvError::params(NAME, i.key, i.message))?;
        let n = params.size;
        let layout = ObsLayout { view: View::Full, c: CHANNELS.len(), w: n, h: n, radius: 1, wall_channel: CH_WALL };
        let spec = EnvSpec {
            name: NAME,
            actions: MOVES,
            channels: CHANNELS.to_vec(),
            obs_shape: layout.shape(),
            events: EVENTS,
            max_steps: params.max_steps,
        };
        let env = Self { params, spec, layout };
        let probe = Streams::new(Seed(0));
        for i in 0..PROBE_LEVELS {
            if let Err(f) = env.generate(&mut probe.indexed("sokoban-probe", i)) {
                let p = &env.params;
                let f = f.attempts;
                let key = if f.too_long > f.too_short { "max_len" } else { "min_len" };
                return Err(EnvError::params(
                    NAME,
                    key,
                    format!(
                        "no level with an optimal solution of {}..={} moves in {} reverse plays of {} steps \
                         ({} too short, {} too long; size {}, {} boxes, {} interior walls): widen min_len..=max_len, \
                         change reverse_steps or raise gen_tries",
                        p.min_len,
                        p.max_len,
                        f.tries,
                        p.reverse_steps,
                        f.too_short,
                        f.too_long,
                        p.size,
                        p.num_boxes,
                        p.interior_walls
                    ),
                ));
            }
        }
        Ok(env)
    }

    pub fn params(&self) -> &SokobanParams {
        &self.params
    }

    /// A room: outer ring wall plus `interior_walls` random interior walls, free cells connected
    /// (bounded resampling, then no interior walls).
    fn room(&self, rng: &mut StreamRng) -> Walls {
        let n = self.params.size;
        let mut open = Walls::new(n, n, true);
        for y in 1..n - 1 {
            for x in 1..n - 1 {
                open.set(Pos::new(x as i32, y as i32), false);
            }
        }
        if self.params.interior_walls == 0 {
            return open;
        }
        let interior = open.free_cells();
        grid::sample_bounded(ROOM_TRIES, || {
            let mut w = open.clone();
            for &p in interior.choose_multiple(rng, self.params.interior_walls) {
                w.set(p, true);
            }
            w.connected().then_some(w)
        })
        .unwrap_or(open)
    }

    /// One reverse-play attempt: (walls, targets, start board), unsolved or not.
    fn reverse_play(&self, rng: &mut StreamRng) -> (Walls, Vec<Pos>, Board) {
        let walls = self.room(rng);
        let free = walls.free_cells();
        // Validation keeps ≥ 2/3 of the interior free (≥ 10 cells), so the player and boxes fit.
        let k = self.params.num_boxes;
        let picked: Vec<Pos> = free.choose_multiple(rng, k + 1).copied().collect();
        let targets = picked[..k].to_vec();
        let mut board = Board::new(picked[k], &targets).expect("distinct cells");
        // (move index, pull?) of every legal reverse move.
        let mut options: Vec<(usize, bool)> = Vec::with_capacity(8);
        for _ in 0..self.params.reverse_steps {
            options.clear();
            let p = board.player;
            for (a, &d) in DIRS.iter().enumerate() {
                let q = p.offset(d);
                if walls.is_wall(q) || board.has_box(q) {
                    continue;
                }
                options.push((a, false));
                if board.has_box(p.offset((-d.0, -d.1))) {
                    options.push((a, true));
                }
            }
            if options.is_empty() {
                break; // boxed in: nothing can move
            }
            let (a, pull) = options[rng.random_range(0..options.len())];
            let d = DIRS[a];
            if pull {
                board.move_box(p.offset((-d.0, -d.1)), p);
            }
            board.player = p.offset(d);
        }
        let mut targets = targets;
        targets.sort_unstable();
        (walls, targets, board)
    }

    /// Generates a level whose optimal length lies in `min_len..=max_len` (deterministic in `rng`),
    /// or says why it could not in `gen_tries` attempts.
    pub fn generate(&self, rng: &mut StreamRng) -> Result<Level, GenFailure> {
        self.generate_counted(rng).0
    }

    /// [`Sokoban::generate`] plus the attempts it took (for rejection rates).
    pub fn generate_counted(&self, rng: &mut StreamRng) -> (Result<Level, GenFailure>, Attempts) {
        let p = &self.params;
        let mut n = Attempts::default();
        let mut fallback = None;
        for _ in 0..p.gen_tries {
            n.tries += 1;
            let (walls, targets, board) = self.reverse_play(rng);
            let graph = Graph::new(&walls, &targets);
            let node = graph.node(&board);
            if graph.solved(&node) {
                n.too_short += 1;
                continue;
            }
            // Depth-bounded: a too-long attempt costs only the states within max_len moves.
            match graph.search(&node, p.max_len, MAX_STATES, false) {
                Search::Found { depth, .. } if depth >= p.min_len => {
                    return (Ok(Level::assemble(walls, targets, board, graph, Some(depth))), n);
                }
                Search::Found { .. } => n.too_short += 1,
                Search::Cut | Search::Unsolvable => n.too_long += 1,
            }
            // Kept as parts: solving it fully is only worth it if generation fails.
            if fallback.is_none() {
                fallback = Some((walls, targets, board));
            }
        }
        let fallback =
            fallback.and_then(|(w, t, b)| Level::new(w, t, b).ok()).filter(|l| l.optimal_len.is_some()).map(Box::new);
        (Err(GenFailure { attempts: n, fallback }), n)
    }

    /// The last resort of `reset`: boxes one push from their targets in an open room (1 move).
    fn one_push_level(&self) -> Level {
        let n = self.params.size;
        let mut walls = Walls::new(n, n, true);
        for y in 1..n - 1 {
            for x in 1..n - 1 {
                walls.set(Pos::new(x as i32, y as i32), false);
            }
        }
        // Box 0 at (2,1) → target (3,1), pushed from (1,1); box 1 (if any) already on (3,3).
        let (mut boxes, mut targets) = (vec![Pos::new(2, 1)], vec![Pos::new(3, 1)]);
        if self.params.num_boxes == 2 {
            boxes.push(Pos::new(3, 3));
            targets.push(Pos::new(3, 3));
        }
        let board = Board::new(Pos::new(1, 1), &boxes).expect("distinct cells");
        Level::new(walls, targets, board).expect("fits a room of side ≥ 6")
    }

    /// The start state of a given level (e.g. from [`Level::parse`]). `step` and the renders take
    /// any level; `write_obs` and `svg_geometry` assume the env's `size × size`.
    pub fn state_for(&self, level: Level) -> SokobanState {
        SokobanState { board: level.start, level: Arc::new(level), t: 0 }
    }
}

impl Env for Sokoban {
    type State = SokobanState;

    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn reset(&self, rng: &mut StreamRng) -> SokobanState {
        let level = self.generate(rng).unwrap_or_else(|f| f.fallback.map_or_else(|| self.one_push_level(), |l| *l));
        self.state_for(level)
    }

    fn step(&self, s: &mut SokobanState, action: usize, _rng: &mut StreamRng) -> Step {
        let p = &self.params;
        let mut step = Step { reward: p.step_reward, ..Step::default() };
        let mut events = Events::default();
        if let Some(push) = s.board.apply(&s.level.walls, action) {
            events.set(EV_PUSH);
            match (s.level.is_target(push.from), s.level.is_target(push.to)) {
                (false, true) => {
                    events.set(EV_ON_TARGET);
                    step.reward += p.box_on_target_reward;
                }
                (true, false) => {
                    events.set(EV_OFF_TARGET);
                    step.reward += p.box_off_target_reward;
                }
                _ => {}
            }
        }
        s.t += 1;
        if s.level.is_solved(&s.board) {
            events.set(EV_SOLVED);
            step.reward += p.solved_reward;
            step.performance = 1.0;
            step.end = Some(End::Terminated);
        } else if s.t >= p.max_steps {
            events.set(EV_TIMEOUT);
            step.end = Some(End::Truncated);
        }
        step.events = events;
        step
    }

    fn write_obs(&self, s: &SokobanState, out: &mut [f32]) {
        let mut o = self.layout.begin(&s.level.template, s.board.player, out);
        for &b in s.board.boxes() {
            o.set(CH_BOX, b, 1.0);
        }
        o.set(CH_AGENT, s.board.player, 1.0);
    }

    fn render_ascii(&self, s: &SokobanState) -> String {
        let l = &s.level;
        grid::ascii(l.walls.w, l.walls.h, |p| cell_char(l, &s.board, p))
    }

    fn svg_geometry(&self) -> Option<SvgGeometry> {
        Some(grid::svg_geometry(self.params.size, self.params.size, SVG_CELL_PX))
    }

    fn render_svg(&self, s: &SokobanState) -> String {
        let l = &s.level;
        let on = s.board.boxes().iter().filter(|&&b| l.is_target(b)).count();
        let caption = format!("{NAME} t={} on target {on}/{}", s.t, l.targets.len());
        grid::svg(l.walls.w, l.walls.h, SVG_CELL_PX, &caption, |p| match cell_char(l, &s.board, p) {
            '#' => SvgCell { fill: "#2d3436", glyph: None },
            '.' => SvgCell { fill: "#c8e6c9", glyph: Some((".", "#2e7d32")) },
            '$' => SvgCell { fill: "#c08040", glyph: Some(("$", "#ffffff")) },
            '*' => SvgCell { fill: "#2e8b57", glyph: Some(("*", "#ffffff")) },
            '@' => SvgCell { fill: "#0984e3", glyph: Some(("@", "#ffffff")) },
            // A lighter blue than `@`: rasterized renders (no glyphs) still show the target.
            '+' => SvgCell { fill: "#74b9ff", glyph: Some(("+", "#ffffff")) },
            _ => SvgCell { fill: "#f5f0e1", glyph: None },
        })
    }
}

/// The XSB character of cell `p`.
fn cell_char(l: &Level, b: &Board, p: Pos) -> char {
    let target = l.is_target(p);
    if l.walls.is_wall(p) {
        '#'
    } else if p == b.player {
        if target { '+' } else { '@' }
    } else if b.has_box(p) {
        if target { '*' } else { '$' }
    } else if target {
        '.'
    } else {
        ' '
    }
}

/// Side of one cell in [`Env::render_svg`] pixels (also reported by [`Env::svg_geometry`]).
const SVG_CELL_PX: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(i: u64) -> StreamRng {
        Streams::new(Seed(5)).indexed("env", i)
    }

    fn len(text: &str) -> Option<usize> {
        solve(&Level::parse(text).unwrap()).map(|p| p.len())
    }

    #[test]
    fn solver_finds_known_optimal_lengths() {
        // One push.
        assert_eq!(len("#####\n#@$.#\n#####"), Some(1));
        // One walk, two pushes.
        assert_eq!(len("#######\n#@ $ .#\n#######"), Some(3));
        // Get above the box (1 move), push it down twice.
        assert_eq!(len("#####\n#@  #\n# $ #\n#   #\n# . #\n#####"), Some(3));
        // Two boxes either side: push one (1), walk back (1), push the other (1).
        assert_eq!(len("#######\n#.$@$.#\n#######"), Some(3));
        // Push left first (1 + 3 moves) beats push down first (3 + 3).
        assert_eq!(len("######\n#    #\n# $@ #\n#.   #\n######"), Some(4));
        // Already solved, also when the boxes' column order differs from their row-major order.
        assert_eq!(len("#####\n#@* #\n#####"), Some(0));
        assert_eq!(len("#####\n#  *#\n#*@ #\n#####"), Some(0));
        // A box in a corner, and two boxes in a row in a corridor: unsolvable.
        assert_eq!(len("#####\n#$ .#\n# @ #\n#####"), None);
        assert_eq!(len("#######\n#@$$..#\n#######"), None);
    }

    #[test]
    fn solution_replays_through_the_dynamics_and_distance_map_agrees() {
        let l = Arc::new(Level::parse("######\n#    #\n# $@ #\n#. $ #\n#  . #\n######").unwrap());
        let path = solve(&l).unwrap();
        let mut b = l.start;
        for &a in &path {
            b.apply(&l.walls, a);
        }
        assert!(l.is_solved(&b));
        let map = DistanceMap::new(l.clone(), MAX_STATES).unwrap();
        assert_eq!(map.distance(&l.start), Some(path.len() as u32));
        assert!(map.optimal_actions(&l.start).contains(&path[0]));
        assert_eq!(optimal_action(&l, &l.start), Some(path[0]));
        // Along the solution the distance falls by one per move, and agrees with a forward search.
        let mut b = l.start;
        for (i, &a) in path.iter().enumerate() {
            let d = map.distance(&b).unwrap();
            assert_eq!(d as usize, path.len() - i);
            assert_eq!(solve_from(&l, &b, MAX_STATES).map(|p| p.len() as u32), Some(d));
            b.apply(&l.walls, a);
        }
        assert_eq!(map.distance(&b), Some(0));
        // Every listed board has the distance the map gives it, and a solved board is at 0.
        assert_eq!(map.boards().count(), map.solvable_states());
        for (board, d) in map.boards() {
            assert_eq!(map.distance(&board), Some(d));
            assert_eq!(d == 0, l.is_solved(&board));
        }
        // A box in a corner off its target is a deadlock: no distance, no solution.
        let dead = Board::new(Pos::new(2, 1), &[Pos::new(1, 1), Pos::new(4, 3)]).unwrap();
        assert_eq!(map.distance(&dead), None);
        assert_eq!(solve_from(&l, &dead, MAX_STATES), None);
        // A cut search says "don't know", never a wrong answer.
        assert_eq!(solve_from(&l, &l.start, 3), None);
    }

    #[test]
    fn ascii_round_trips_through_parse() {
        let env = Sokoban::new(SokobanParams::deploy()).unwrap();
        for i in 0..10 {
            let s = env.reset(&mut rng(i));
            let back = Level::parse(&env.render_ascii(&s)).unwrap();
            assert_eq!(
                (back.walls.clone(), back.targets.clone(), back.start),
                (s.level.walls.clone(), s.level.targets.clone(), s.board)
            );
            assert_eq!(back.optimal_len, s.level.optimal_len);
        }
    }

    #[test]
    fn blocked_pushes_move_nothing_and_rewards_follow_boxoban() {
        let env = Sokoban::new(SokobanParams::train()).unwrap();
        let (up, right) = (0, 1);
        let mut r = rng(0);
        let mut s = env.state_for(Level::parse("#######\n#@$$. #\n#   . #\n#######").unwrap());
        let st = env.step(&mut s, right, &mut r); // a box into a box
        assert_eq!((s.board.player, st.events, st.reward), (Pos::new(1, 1), Events::default(), -0.1));
        env.step(&mut s, up, &mut r); // into the wall
        assert_eq!(s.board.player, Pos::new(1, 1));
        // Target to target (no event but the push), then off a target.
        let mut s = env.state_for(Level::parse("#########\n#@*. $  #\n#########").unwrap());
        let st = env.step(&mut s, right, &mut r);
        assert_eq!((st.reward, st.events.names(env.spec())), (-0.1, vec!["push"]));
        let st = env.step(&mut s, right, &mut r);
        assert_eq!((st.reward, st.events.names(env.spec())), (-1.1, vec!["box_off_target", "push"]));
        // Onto the last target: +1 and +10, terminated, performance 1.
        let mut s = env.state_for(Level::parse("########\n#@$.  *#\n########").unwrap());
        let st = env.step(&mut s, right, &mut r);
        assert!((st.reward - 10.9).abs() < 1e-6, "{}", st.reward);
        assert_eq!(st.events.names(env.spec()), vec!["solved", "box_on_target", "push"]);
        assert_eq!((st.end, st.performance), (Some(End::Terminated), 1.0));
        // Time limit.
        let env = Sokoban::new(SokobanParams { max_steps: 2, ..SokobanParams::train() }).unwrap();
        let mut s = env.reset(&mut r);
        let ends: Vec<_> =
            (0..2).map(|_| env.step(&mut s, up, &mut r)).map(|st| (st.end, st.events.has(EV_TIMEOUT))).collect();
        assert_eq!(ends[1], (Some(End::Truncated), true));
    }

    #[test]
    fn observation_has_one_channel_per_object() {
        let env = Sokoban::new(SokobanParams::train()).unwrap();
        let s = env.state_for(Level::parse("#######\n#+$  #\n# *   #\n#     #\n#     #\n#     #\n#######").unwrap());
        let mut o = vec![9.0; env.spec().obs_len()];
        env.write_obs(&s, &mut o);
        let plane = |c: usize| &o[c * 49..(c + 1) * 49];
        let sum = |c: usize| plane(c).iter().sum::<f32>();
        assert_eq!((sum(CH_WALL), sum(CH_TARGET), sum(CH_BOX), sum(CH_AGENT)), (24.0 + 1.0, 2.0, 2.0, 1.0));
        assert_eq!(plane(CH_AGENT)[7 + 1], 1.0);
        assert_eq!(plane(CH_TARGET)[7 + 1], 1.0);
        assert!(o.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn exhausted_generation_falls_back_to_a_solvable_unsolved_level() {
        // Past the build probe (which would refuse these bounds): a stream that never hits the range.
        let mut env = Sokoban::new(SokobanParams { gen_tries: 5, ..SokobanParams::train() }).unwrap();
        env.params.min_len = 200;
        env.params.max_len = 300;
        let f = env.generate(&mut rng(1)).unwrap_err();
        assert_eq!(f.attempts.tries, 5);
        assert_eq!(f.attempts.too_short + f.attempts.too_long, 5);
        let s = env.reset(&mut rng(1));
        assert!(s.level.optimal_len.is_some_and(|n| n > 0), "{:?}", s.level.optimal_len);
        for boxes in [1, 2] {
            let env = Sokoban::new(SokobanParams { num_boxes: boxes, size: 6, ..SokobanParams::train() }).unwrap();
            let l = env.one_push_level();
            assert_eq!((l.optimal_len, l.start.boxes().len()), (Some(1), boxes));
        }
    }

    #[test]
    fn bad_params_name_their_key() {
        for (p, key) in [
            (SokobanParams { size: 5, ..SokobanParams::train() }, "size"),
            (SokobanParams { num_boxes: 3, ..SokobanParams::train() }, "num_boxes"),
            (SokobanParams { interior_walls: 20, ..SokobanParams::train() }, "interior_walls"),
            (SokobanParams { min_len: 400, max_len: 500, ..SokobanParams::train() }, "min_len"),
            (SokobanParams { min_len: 100, max_len: 120, ..SokobanParams::train() }, "min_len"),
            (SokobanParams { max_len: 0, min_len: 1, ..SokobanParams::train() }, "max_len"),
            (SokobanParams { step_reward: f32::NAN, ..SokobanParams::train() }, "step_reward"),
        ] {
            let e = Sokoban::new(p).unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{key}: {e}");
        }
    }
}
