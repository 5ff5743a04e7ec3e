import Trace

/// Which IOVAs are mapped, followed from a trace's own MAP and UNMAP events
/// and their results, so that a bitmap difference can say whether a bit
/// lies inside a mapping or in a hole. It needs no backend, so `diff` of
/// two recordings uses it too. It holds only states a kernel can be in,
/// whatever a trace claims (mappings never overlap).
public struct MappingShadow {
    /// Mapped ranges per container fd.
    private var containers: [Int32: MappingIndex] = [:]

    public init() {}

    /// Page ranges, relative to `base` in `pgsize` pages, of the mappings on
    /// container `fd` that overlap `[base, base + pages * pgsize)`.
    public func coverage(fd: Int32, base: UInt64, pgsize: UInt64, pages: UInt64) -> [Range<UInt64>] {
        guard let index = containers[fd], pgsize.nonzeroBitCount == 1, pages > 0 else { return [] }
        let shift = UInt64(pgsize.trailingZeroBitCount)
        let span = pages.multipliedReportingOverflow(by: pgsize)
        let last = span.overflow ? UInt64.max : base &+ (span.partialValue - 1)
        return index.overlapping(base, max(base, last)).map { m in
            let lo = m.iova > base ? (m.iova - base) >> shift : 0
            let hi = min(pages, (m.last - base) >> shift + 1)
            return lo..<hi
        }
    }

    /// Follows one event; `result` is the outcome to believe (the recorded
    /// one when stated, else the replayed one).
    public mutating func apply(_ e: Event, result: CallResult?) {
        guard result?.isSuccess == true else { return }
        switch e.body {
        case .mapDMA(let x) where x.flags & VFIOUAPI.mapFlagVAddr == 0:
            // A trace may claim anything: a MAP "succeeding" with size 0,
            // wrapping past 2^64 or overlapping a mapping describes a state
            // the kernel refuses (EINVAL, EEXIST in vfio_dma_do_map). The
            // shadow keeps what a kernel could hold and ignores the rest;
            // the replay's own comparison reports the claim.
            guard x.size > 0, x.iova &+ (x.size - 1) >= x.iova else { return }
            var index = containers[x.fd] ?? MappingIndex()
            guard index.firstOverlapping(x.iova, x.iova &+ (x.size - 1)) == nil else { return }
            index.insert(DMAMapping(iova: x.iova, size: x.size, vaddr: .valid, prot: 3, iommuMapped: false))
            containers[x.fd] = index
        case .unmapDMA(let x) where x.flags & VFIOUAPI.unmapFlagVAddr == 0:
            guard var index = containers[x.fd] else { return }
            if x.flags & VFIOUAPI.unmapFlagAll != 0 {
                index.removeAll()
            } else if x.size > 0 {
                let last = x.iova &+ (x.size - 1)
                let gone = index.overlapping(x.iova, last).filter { $0.iova >= x.iova && $0.last <= last }
                for m in gone { index.remove(m) }
            }
            containers[x.fd] = index
        case .close(let x):
            containers[x.fd] = nil
        default: break
        }
    }
}
