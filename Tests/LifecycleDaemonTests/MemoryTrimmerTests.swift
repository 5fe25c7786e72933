@testable import LifecycleDaemon
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
