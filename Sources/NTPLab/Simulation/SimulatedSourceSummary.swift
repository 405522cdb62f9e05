import ToolSupport

/// What the vote made of one simulated server over a run.
public struct SimulatedSourceSummary: Sendable, Equatable {
    public var serverIndex: Int
    public var exchanges: Int
    /// Votes (one per accepted stamp of any server) in which it was selected, a falseticker,
    /// unusable, or a candidate without majority.
    public var selectedVotes: Int
    public var falsetickerVotes: Int
    public var unusableVotes: Int
    public var candidateVotes: Int
    /// The server's first step (its time moved away from truth), if it has one.
    public var stepNanoseconds: Int64?
    /// First vote at or after the step that called it a falseticker (true time of the vote).
    public var flaggedNanoseconds: Int64?
    /// Its own polls from the step up to and including the one that got it flagged.
    public var pollsUntilFlagged: Int?
    /// Votes after it was first flagged in which it was nevertheless selected (goal 0).
    public var selectedAfterFlagged: Int

    public init(serverIndex: Int) {
        self.serverIndex = serverIndex
        exchanges = 0
        selectedVotes = 0; falsetickerVotes = 0; unusableVotes = 0; candidateVotes = 0
        stepNanoseconds = nil; flaggedNanoseconds = nil; pollsUntilFlagged = nil
        selectedAfterFlagged = 0
    }
}

extension SimulatedSourceSummary {
    /// One line for the report: the server's votes and, if it stepped, when it was flagged.
    public var line: String {
        var text = "server \(serverIndex + 1): \(exchanges) exchanges; votes selected \(selectedVotes), "
            + "falseticker \(falsetickerVotes), unusable \(unusableVotes), no-majority \(candidateVotes)"
        if let step = stepNanoseconds {
            if let flagged = flaggedNanoseconds, let polls = pollsUntilFlagged {
                text += "; stepped at \(formatDuration(step)), flagged falseticker \(formatDuration(flagged - step)) later "
                    + "(poll \(polls) after the step), selected \(selectedAfterFlagged) times after"
            } else {
                text += "; stepped at \(formatDuration(step)), NEVER flagged"
            }
        }
        return text
    }

    func json() -> JSONValue {
        var members = [
            JSONMember("server", .integer(Int64(serverIndex + 1))),
            JSONMember("exchanges", .integer(Int64(exchanges))),
            JSONMember("selectedVotes", .integer(Int64(selectedVotes))),
            JSONMember("falsetickerVotes", .integer(Int64(falsetickerVotes))),
            JSONMember("unusableVotes", .integer(Int64(unusableVotes))),
            JSONMember("noMajorityVotes", .integer(Int64(candidateVotes))),
            JSONMember("selectedAfterFlagged", .integer(Int64(selectedAfterFlagged))),
        ]
        if let step = stepNanoseconds { members.append(JSONMember("stepNanoseconds", .integer(step))) }
        if let flagged = flaggedNanoseconds { members.append(JSONMember("flaggedNanoseconds", .integer(flagged))) }
        if let polls = pollsUntilFlagged { members.append(JSONMember("pollsUntilFlagged", .integer(Int64(polls)))) }
        return .object(members)
    }
}
