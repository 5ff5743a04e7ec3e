/// One event line's verb and arguments into an event body, and the
/// GET_INFO capabilities.
extension TextParser {
    mutating func parseBody(_ verb: Token, _ a: inout Args, _ o: inout Outcome) throws(TextError) -> EventBody {
        let result = try o.parseResult(self)
        switch verb.text {
        case "open":
            guard let path = a.positional() else { throw fail(verb.column, "open needs a path (/dev/vfio/vfio or /dev/vfio/N)") }
            let text = path.text.first == "\"" ? try unquote(path.text, column: path.column) : String(path.text)
            return .open(Open(path: text, result: result))
        case "close":
            return .close(Close(fd: try a.fd(default: nil), result: result))
        case "get_api_version":
            return .getAPIVersion(GetAPIVersion(fd: try a.fd(default: d.containerFD), result: result))
        case "check_extension", "set_iommu":
            guard let t = a.positional(), let v = TextSyntax.parseExtension(t.text) else {
                throw fail(verb.column, "\(verb.text) needs an IOMMU type (TYPE1, TYPE1v2, … or a number)")
            }
            let fd = try a.fd(default: d.containerFD)
            return verb.text == "set_iommu" ? .setIOMMU(SetIOMMU(fd: fd, iommuType: v, result: result))
                : .checkExtension(CheckExtension(fd: fd, ext: v, result: result))
        case "get_info":
            let fd = try a.fd(default: d.containerFD)
            let argsz = try a.u32("argsz") ?? VFIOUAPI.iommuInfoSize
            var info: IOMMUInfo? = nil
            if o.fields.has("argsz") || o.fields.has("flags") || o.fields.has("cap") {
                var caps: [InfoCapability] = []
                let ia = try o.fields.u32("argsz") ?? argsz
                let fl = try o.fields.flags("flags", VFIOUAPI.infoFlags) ?? 0
                let pg = try o.fields.u64("pgsizes") ?? 0
                let co = try o.fields.u32("cap_offset") ?? 0
                while let c = o.fields.raw("cap") { caps.append(try capability(c)) }
                info = IOMMUInfo(argsz: ia, flags: fl, iovaPgsizes: pg, capOffset: co, caps: caps)
            }
            return .getInfo(GetInfo(fd: fd, argsz: argsz, result: result, info: info))
        case "map_dma":
            let fd = try a.fd(default: d.containerFD)
            let iova = try a.required("iova"), size = try a.required("size")
            let flags = try a.flags("flags", VFIOUAPI.mapFlags) ?? 3
            let vaddr = try a.pointer("vaddr") ?? .valid
            let argsz = try a.u32("argsz") ?? VFIOUAPI.dmaMapSize
            return .mapDMA(MapDMA(fd: fd, argsz: argsz, flags: flags, vaddr: vaddr, iova: iova, size: size, result: result))
        case "unmap_dma":
            let fd = try a.fd(default: d.containerFD)
            let iova = try a.required("iova"), size = try a.required("size")
            let bm = try bitmapArg(&a, rangeSize: size, force: false)
            let flags = try a.flags("flags", VFIOUAPI.unmapFlags) ?? (bm != nil ? VFIOUAPI.unmapFlagGetDirtyBitmap : 0)
            let argsz = try a.u32("argsz") ?? (VFIOUAPI.dmaUnmapMinSize + (bm != nil ? VFIOUAPI.bitmapSize : 0))
            let sizeOut = try o.fields.u64("size")
            var out: BitmapBytes? = nil
            if let t = o.fields.raw("dirty") {
                out = try bitmapValue(t, defaultCount: TextSyntax.defaultCapturedBytes(bm?.size ?? 0))
            }
            return .unmapDMA(UnmapDMA(fd: fd, argsz: argsz, flags: flags, iova: iova, size: size, bitmap: bm,
                                      result: result, sizeOut: sizeOut, bitmapOut: out))
        case "dirty":
            var flags: UInt32
            var wantRange = false
            if a.bare("start") { flags = VFIOUAPI.dirtyFlagStart }
            else if a.bare("stop") { flags = VFIOUAPI.dirtyFlagStop }
            else if a.bare("get") { flags = VFIOUAPI.dirtyFlagGetBitmap; wantRange = true }
            else {
                guard let f = try a.flags("flags", VFIOUAPI.dirtyFlags) else {
                    throw fail(verb.column, "dirty needs start, stop, get or flags=…")
                }
                flags = f
            }
            let fd = try a.fd(default: d.containerFD)
            var range: DirtyRange? = nil
            if wantRange || a.has("iova") {
                let iova = try a.required("iova"), size = try a.required("size")
                range = DirtyRange(iova: iova, size: size, bitmap: try bitmapArg(&a, rangeSize: size, force: true)!)
            }
            let argsz = try a.u32("argsz")
                ?? (range != nil ? VFIOUAPI.dirtyBitmapMinSize + VFIOUAPI.dirtyBitmapGetSize : VFIOUAPI.dirtyBitmapMinSize)
            var out: BitmapBytes? = nil
            if let t = o.fields.raw("dirty") {
                out = try bitmapValue(t, defaultCount: TextSyntax.defaultCapturedBytes(range?.bitmap.size ?? 0))
            }
            return .dirtyPages(DirtyPages(fd: fd, argsz: argsz, flags: flags, range: range, result: result, bitmapOut: out))
        case "group_get_status":
            let fd = try a.fd(default: d.groupFD)
            let argsz = try a.u32("argsz") ?? 8
            let f = try o.fields.flags("flags", VFIOUAPI.groupStatusFlags)
            return .groupGetStatus(GroupGetStatus(fd: fd, argsz: argsz, result: result, flagsOut: f))
        case "group_set_container":
            let fd = try a.fd(default: d.groupFD)
            let c = try a.fd("container", default: d.containerFD)
            guard let kt = a.raw("kind"), let kind = GroupKind(name: kt.value!) else {
                throw fail(verb.column, "group_set_container needs kind=iommu or kind=emulated")
            }
            return .groupSetContainer(GroupSetContainer(fd: fd, container: c, kind: kind, result: result))
        case "group_unset_container":
            return .groupUnsetContainer(GroupUnsetContainer(fd: try a.fd(default: d.groupFD), result: result))
        case "group_get_device_fd":
            let fd = try a.fd(default: d.groupFD)
            guard let name = try a.string("name") else { throw fail(verb.column, "group_get_device_fd needs name=\"…\"") }
            return .groupGetDeviceFD(GroupGetDeviceFD(fd: fd, name: name, result: result))
        case "pin", "unpin":
            guard let g = try a.u32("group") else { throw fail(verb.column, "\(verb.text) needs group=N") }
            let iova = try a.required("iova")
            let n = try a.u32("npage") ?? 1
            if verb.text == "unpin" { return .unpin(Unpin(group: g, iova: iova, npage: n, result: result)) }
            let prot = try a.flags("prot", VFIOUAPI.pinProt) ?? 3
            return .pin(Pin(group: g, iova: iova, npage: n, prot: prot, result: result))
        case "dma_rw":
            guard let g = try a.u32("group") else { throw fail(verb.column, "dma_rw needs group=N") }
            let iova = try a.required("iova"), len = try a.required("len")
            let write: Bool
            if a.bare("write") { write = true } else if a.bare("read") { write = false } else {
                throw fail(verb.column, "dma_rw needs write or read")
            }
            return .dmaRW(DMARW(group: g, iova: iova, length: len, write: write, result: result))
        case "ioctl":
            let fd = try a.fd(default: nil)
            guard let kt = a.raw("kind"), let kind = FDKind(name: kt.value!) else {
                throw fail(verb.column, "ioctl needs kind=container|group|device|other")
            }
            let req = try a.required("req")
            let argIn = try a.raw("arg").map { (t) throws(TextError) in try bytesValue(t) } ?? []
            let argOut = try o.fields.raw("out").map { (t) throws(TextError) in try bytesValue(t) }
            return .rawIoctl(RawIoctl(fd: fd, fdKind: kind, request: req, argIn: argIn, result: result, argOut: argOut))
        case "marker":
            guard let t = a.positional() else { throw fail(verb.column, "marker needs a quoted text") }
            return .marker(Marker(try unquote(t.text, column: t.column)))
        case "loss":
            let n = try a.required("count")
            return .loss(Loss(count: n, reason: try a.string("reason") ?? ""))
        default:
            throw fail(verb.column, "unknown event '\(verb.text)' (known: open, close, get_api_version, check_extension, set_iommu, get_info, map_dma, unmap_dma, dirty, group_get_status, group_set_container, group_unset_container, group_get_device_fd, pin, unpin, dma_rw, ioctl, marker, loss)")
        }
    }

    func capability(_ t: Token) throws(TextError) -> InfoCapability {
        let s = t.valueSub!
        guard let at = s.firstIndex(of: "@"), let colon = s[at...].firstIndex(of: ":") else {
            throw fail(t.column, "capability: expected NAME@OFFSET:vVERSION,…")
        }
        let name = s[..<at]
        guard let off = TextSyntax.number(s[s.index(after: at)..<colon]).flatMap({ UInt32(exactly: $0) }) else {
            throw fail(t.column, "capability: bad offset")
        }
        let fields = s[s.index(after: colon)...].split(separator: ",")
        var kv: [Substring: Substring] = [:]
        var version: UInt16 = 1
        for f in fields {
            if f.hasPrefix("v"), let v = UInt16(f.dropFirst()) { version = v; continue }
            guard let eq = f.firstIndex(of: "=") else { throw fail(t.column, "capability: bad field '\(f)'") }
            kv[f[..<eq]] = f[f.index(after: eq)...]
        }
        func num(_ k: Substring) throws(TextError) -> UInt64 {
            guard let v = kv[k] else { throw fail(t.column, "capability \(name): missing \(k)=") }
            guard let n = TextSyntax.number(v) else { throw fail(t.column, "capability \(name): bad \(k)=\(v)") }
            return n
        }
        let next = UInt32(truncatingIfNeeded: try num("next"))
        var id: UInt16
        let body: InfoCapability.Body
        switch name {
        case "iova_range":
            id = VFIOUAPI.capIOVARange
            var rs: [IOVARange] = []
            for r in (kv["ranges"] ?? "").split(separator: "/") {
                let ends = r.split(separator: "-")
                guard ends.count == 2, let a = TextSyntax.number(ends[0]), let b = TextSyntax.number(ends[1]) else {
                    throw fail(t.column, "capability iova_range: bad range '\(r)'")
                }
                rs.append(IOVARange(start: a, end: b))
            }
            body = .iovaRanges(rs)
        case "migration":
            id = VFIOUAPI.capMigration
            body = .migration(flags: UInt32(truncatingIfNeeded: try num("flags")), hole: UInt32(truncatingIfNeeded: try num("hole")),
                              pgsizeBitmap: try num("pgsizes"), maxDirtyBitmapSize: try num("max"))
        case "dma_avail":
            id = VFIOUAPI.capDMAAvail
            body = .dmaAvail(UInt32(truncatingIfNeeded: try num("avail")))
        default:
            guard name.hasPrefix("id"), let n = UInt16(name.dropFirst(2)) else {
                throw fail(t.column, "capability: unknown name '\(name)' (iova_range, migration, dma_avail, idN)")
            }
            id = n
            var tok = t
            tok.valueSub = kv["raw"] ?? ""
            body = .raw(try bytesValue(tok))
        }
        if let i = kv["id"] {
            guard let n = UInt16(i) else { throw fail(t.column, "capability: bad id") }
            id = n
        }
        return InfoCapability(id: id, version: version, offset: off, next: next, body: body)
    }
}
