/// Minimum of a sliding window of keyed stamp indices, without rescanning the window
/// (docs/feedforward.md §3): a monotonic deque in a ring allocated once.
struct SlidingMinimum {
    private var indices: [Int]
    private var keys: [Int64]
    private var head = 0
    private(set) var count = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        indices = [Int](repeating: 0, count: self.capacity)
        keys = [Int64](repeating: 0, count: self.capacity)
    }

    mutating func reset() {
        head = 0
        count = 0
    }

    /// Adds `index` (increasing from call to call) with `key`; drops entries it dominates.
    mutating func push(index: Int, key: Int64) {
        while count > 0 && keys[(head + count - 1) % capacity] >= key { count -= 1 }
        if count == capacity {
            head = (head + 1) % capacity
            count -= 1
        }
        let slot = (head + count) % capacity
        indices[slot] = index
        keys[slot] = key
        count += 1
    }

    /// Forgets entries whose index is below `lowest` (the window's left edge).
    mutating func dropBefore(_ lowest: Int) {
        while count > 0 && indices[head] < lowest {
            head = (head + 1) % capacity
            count -= 1
        }
    }

    var minimumIndex: Int? { count > 0 ? indices[head] : nil }
    var minimumKey: Int64? { count > 0 ? keys[head] : nil }
}
