import Trace

/// A host description file: the ``HostModel`` traits as text, one per line
/// (`key value`), `#` comments; a trait not named keeps its default (the
/// lab's VT-d). `vfiotrace host` prints one to start from, and `--host FILE`
/// gives it to the engine.
///
///     # An ARM SMMUv3 host with 64 KiB pages
///     page_size 64K
///     domain_pgsizes 0x20010000
///     domain_iova_ranges 0x0-0x7fffffff 0x100000000-0xffffffffffff
///     domain_cache_coherency yes
///     domain_nesting yes
extension HostModel {
    /// Why a host description was refused: the file, line and column, and
    /// what was wrong.
    public struct DescriptionError: Error, Sendable, CustomStringConvertible {
        public let path: String
        public let line: Int
        public let column: Int
        public let message: String
        public var description: String { "\(path):\(line):\(column): \(message)" }
    }

    /// The keys, in the order ``descriptionText`` prints them, with what each
    /// one means (for `vfiotrace host` and error messages).
    public static let descriptionKeys: [(key: String, meaning: String)] = [
        ("page_size", "PAGE_SIZE: a power of two, at least 4K"),
        ("domain_pgsizes", "an IOMMU domain's pgsize_bitmap (GET_INFO iova_pgsizes once one is attached)"),
        ("domain_iova_ranges", "an IOMMU domain's usable IOVA ranges, START-END (inclusive), ascending, disjoint"),
        ("domain_cache_coherency", "yes or no: whether a domain enforces cache coherency (CHECK_EXTENSION DMA_CC)"),
        ("domain_nesting", "yes or no: whether a domain takes nesting (iommu_enable_nesting, for TYPE1_NESTING)"),
        ("domain_map_beyond_aperture", "the errno the IOMMU driver gives for a mapping past its address width"),
        ("dma_entry_limit", "the dma_entry_limit module parameter"),
        ("pin_pages_max_entries", "VFIO_PIN_PAGES_MAX_ENTRIES (PAGE_SIZE / sizeof(unsigned long))"),
    ]

    /// Parses a description over `base` (the defaults unless given).
    public init(description text: String, path: String, over base: HostModel = HostModel()) throws(DescriptionError) {
        self = base
        var seen: Set<String> = []
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let key = words.first else { continue }
            func fail(_ word: Substring?, _ message: String) -> DescriptionError {
                let at = word.map { line.distance(from: line.startIndex, to: $0.startIndex) } ?? line.count
                return DescriptionError(path: path, line: n + 1, column: at + 1, message: message)
            }
            let values = Array(words.dropFirst())
            func single() throws(DescriptionError) -> Substring {
                guard values.count == 1 else {
                    throw fail(values.count > 1 ? values[1] : nil, "\(key) takes one value")
                }
                return values[0]
            }
            func number() throws(DescriptionError) -> UInt64 {
                let v = try single()
                guard let x = TextSyntax.number(v) else { throw fail(v, "\(key): \(Self.clipped(v)) is not a number (123, 0x7b, 4K)") }
                return x
            }
            func yesNo() throws(DescriptionError) -> Bool {
                let v = try single()
                switch v {
                case "yes", "true", "1": return true
                case "no", "false", "0": return false
                default: throw fail(v, "\(key): \(Self.clipped(v)) is not yes or no")
                }
            }
            guard !seen.contains(String(key)) else { throw fail(key, "\(Self.clipped(key)) is given twice") }
            seen.insert(String(key))
            switch key {
            case "page_size":
                let v = try number()
                guard v >= 4096, v & (v - 1) == 0 else { throw fail(values[0], "page_size must be a power of two, at least 4K") }
                pageSize = v
            case "domain_pgsizes":
                let v = try number()
                guard v != 0 else { throw fail(values[0], "domain_pgsizes must name at least one page size") }
                domainPgsizeBitmap = v
            case "domain_iova_ranges":
                guard !values.isEmpty else { throw fail(nil, "domain_iova_ranges needs at least one START-END range") }
                var ranges: [ClosedRange<UInt64>] = []
                for v in values {
                    let ends = v.split(separator: "-", omittingEmptySubsequences: false)
                    guard ends.count == 2, let a = TextSyntax.number(ends[0]), let b = TextSyntax.number(ends[1]) else {
                        throw fail(v, "domain_iova_ranges: \(Self.clipped(v)) is not START-END")
                    }
                    guard a <= b else { throw fail(v, "domain_iova_ranges: \(Self.clipped(v)) ends before it starts") }
                    if let last = ranges.last, a <= last.upperBound {
                        throw fail(v, "domain_iova_ranges: \(Self.clipped(v)) is not above the range before it")
                    }
                    ranges.append(a...b)
                }
                domainIOVARanges = ranges
            case "domain_cache_coherency":
                domainEnforcesCacheCoherency = try yesNo()
            case "domain_nesting":
                domainSupportsNesting = try yesNo()
            case "domain_map_beyond_aperture":
                let v = try single()
                guard let e = ErrnoName.number(String(v)) else { throw fail(v, "domain_map_beyond_aperture: \(Self.clipped(v)) is not an errno (EFAULT, EINVAL, E22)") }
                domainMapBeyondApertureErrno = LinuxErrno(rawValue: e)
            case "dma_entry_limit":
                let v = try number()
                guard let x = UInt32(exactly: v) else { throw fail(values[0], "dma_entry_limit must fit 32 bits") }
                dmaEntryLimit = x
            case "pin_pages_max_entries":
                let v = try number()
                guard let x = UInt32(exactly: v), x > 0 else { throw fail(values[0], "pin_pages_max_entries must be 1 to 2^32-1") }
                pinPagesMaxEntries = x
            default:
                throw fail(key, "unknown key \(Self.clipped(key)); known: " + Self.descriptionKeys.map(\.key).joined(separator: ", "))
            }
        }
    }

    /// The description of this host, every key stated, that ``init(description:path:over:)`` reads back.
    public var descriptionText: String {
        func yn(_ b: Bool) -> String { b ? "yes" : "no" }
        let values: [String: String] = [
            "page_size": TextSyntax.size(pageSize),
            "domain_pgsizes": TextSyntax.hex(domainPgsizeBitmap),
            "domain_iova_ranges": domainIOVARanges.map { TextSyntax.hex($0.lowerBound) + "-" + TextSyntax.hex($0.upperBound) }.joined(separator: " "),
            "domain_cache_coherency": yn(domainEnforcesCacheCoherency),
            "domain_nesting": yn(domainSupportsNesting),
            "domain_map_beyond_aperture": ErrnoName.name(domainMapBeyondApertureErrno.rawValue),
            "dma_entry_limit": String(dmaEntryLimit),
            "pin_pages_max_entries": String(pinPagesMaxEntries),
        ]
        return Self.descriptionKeys.map { "# \($0.meaning)\n\($0.key) \(values[$0.key]!)\n" }.joined()
    }

    /// A word of the file as an error quotes it: at most 40 characters,
    /// control characters escaped (they never reach the terminal).
    private static func clipped(_ s: Substring) -> String {
        let w = TextSyntax.word(String(s.prefix(40)))
        return s.count <= 40 ? w : w + "…"
    }
}
