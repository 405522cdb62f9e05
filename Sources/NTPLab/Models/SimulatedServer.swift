/// One more server a simulated client polls, over its own path: several servers with
/// independent paths let the lab test selection among sources (docs/feedforward.md,
/// "Several sources").
public struct SimulatedServer: Sendable, Equatable {
    public var network: NetworkParameters
    public var server: ServerParameters
    public init(network: NetworkParameters, server: ServerParameters = ServerParameters()) {
        self.network = network
        self.server = server
    }
}
