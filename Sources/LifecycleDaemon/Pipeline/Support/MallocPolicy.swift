import Glibc

/// How glibc's malloc serves the daemon: a block of 128 KiB or more that the heap cannot
/// serve from memory it holds is mapped from the kernel, and unmapped whole when freed,
/// instead of growing the heap.
///
/// glibc starts with that threshold but raises it to the size of each large block freed (up
/// to 32 MiB). After the first snapshot buffer or grown column is freed, librdkafka's
/// fetch and produce buffers grow the heap instead, where freed memory stays resident until
/// a trim finds whole free pages, and the heap fragments.
/// In the soak benchmark the fixed threshold held resident memory 4–11 MiB lower, with
/// narrower swings (BENCHMARKS.md). An operator's own malloc settings (`GLIBC_TUNABLES`)
/// are left to win.
enum MallocPolicy {
    static let mmapThreshold: Int32 = 128 * 1024
    /// `M_MMAP_THRESHOLD` in glibc's malloc.h, which Swift's Glibc module does not import.
    private static let mmapThresholdOption: Int32 = -3

    private typealias SetOption = @convention(c) (Int32, Int32) -> Int32
    /// glibc's `mallopt`; nil on a C library without it.
    private static let mallopt: SetOption? = dlsym(nil, "mallopt").map { unsafeBitCast($0, to: SetOption.self) }

    /// Fixes the threshold unless the environment tunes malloc itself; true if it did.
    @discardableResult
    static func apply(environment: (String) -> String? = { getenv($0).map { String(cString: $0) } }) -> Bool {
        if environment("GLIBC_TUNABLES")?.contains("glibc.malloc.") == true || environment("MALLOC_MMAP_THRESHOLD_") != nil {
            return false
        }
        guard let mallopt else { return false }
        return mallopt(mmapThresholdOption, mmapThreshold) == 1
    }
}
