/// Stream numbers of the lab's models: each model draws from its own `SeededRandom` stream,
/// so changing one model's parameters does not reshuffle the others' draws.
enum LabStream {
    static let oscillator: UInt64 = 1
    static let forwardPath: UInt64 = 2
    static let backwardPath: UInt64 = 3
    static let server: UInt64 = 4
}
