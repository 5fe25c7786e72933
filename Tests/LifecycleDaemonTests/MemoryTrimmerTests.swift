@testable import LifecycleDaemon
import Glibc
import Testing

@Suite("Memory trimmer")
struct MemoryTrimmerTests {
    @Test("trims once per interval, first one interval after start; glibc's malloc_trim is found")
    func oncePerInterval() {
        var trimmer = MemoryTrimmer(intervalMilliseconds: 10_000, now: 1_000)
        #expect(trimmer.trimIfDue(now: 10_999) == nil)
        #expect(trimmer.trimIfDue(now: 11_000) != nil, "due, and malloc_trim resolved (this is glibc)")
        #expect(trimmer.trimIfDue(now: 11_001) == nil)
        #expect(trimmer.trimIfDue(now: 20_999) == nil)
        #expect(trimmer.trimIfDue(now: 21_000) != nil)
    }
}

@Suite("Malloc policy")
struct MallocPolicyTests {
    /// Whether glibc served `pointer` by mmap: the IS_MMAPPED bit of its chunk's size word.
    static func isMapped(_ pointer: UnsafeMutableRawPointer) -> Bool {
        pointer.load(fromByteOffset: -MemoryLayout<Int>.size, as: Int.self) & 2 != 0
    }

    @Test("a large block freed does not move the mmap threshold up: the next one the heap cannot serve is mapped too")
    func fixedThreshold() throws {
        #expect(MallocPolicy.apply(environment: { _ in nil }))
        // malloc maps a block only when its arena cannot serve it from memory it holds
        // already; other tests leave such memory behind, so take it up first.
        let size = 1 << 20
        var taken: [UnsafeMutableRawPointer] = []
        defer { taken.forEach { free($0) } }
        var first: UnsafeMutableRawPointer?
        while first == nil && taken.count < 512 {
            let block = try #require(malloc(size))
            if Self.isMapped(block) { first = block } else { taken.append(block) }
        }
        free(try #require(first, "no mapped block within 512 MiB"))
        // glibc's own policy now raises its threshold above this size and grows the heap instead.
        let second = try #require(malloc(size))
        #expect(Self.isMapped(second))
        free(second)
    }

    @Test("an operator's GLIBC_TUNABLES malloc settings are left alone")
    func operatorWins() {
        #expect(!MallocPolicy.apply(environment: { $0 == "GLIBC_TUNABLES" ? "glibc.malloc.mmap_threshold=65536" : nil }))
        #expect(!MallocPolicy.apply(environment: { $0 == "MALLOC_MMAP_THRESHOLD_" ? "65536" : nil }))
    }
}
