import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import Trace

@Suite("Damaged, truncated and foreign files")
struct RobustnessTests {
    /// A small trace of several frames, and for each frame the number of
    /// events it holds and where it ends.
    static func multiFrameTrace(_ dir: String) throws -> (path: String, events: [Event], frameEnds: [(end: Int, events: Int)]) {
        var g = EventGenerator(seed: 4242)
        let events = g.stream(60).map { e -> Event in
            // Keep bitmaps small so the file stays small for byte-by-byte tests.
            var e = e
            if case .unmapDMA = e.body { e.body = .pin(Pin(group: 1, iova: e.seq << 12, npage: 1)) }
            if case .dirtyPages = e.body { e.body = .unpin(Unpin(group: 1, iova: e.seq << 12, npage: 1)) }
            if case .loss = e.body { e.body = .marker(Marker("was a loss")) }
            return e
        }
        let path = dir + "/m.vft"
        try writeTrace(path, events, options: .init(frameBytes: 300))
        let r = try TraceReader(path: path)
        let idx = try #require(r.storedIndex)
        let ends = idx.entries.map { (end: Int($0.offset) + Int($0.compressedSize), events: Int($0.firstEvent) + Int($0.eventCount)) }
        return (path, events, ends)
    }

    @Test("truncation at every byte offset keeps every complete frame and reports the loss")
    func truncateEverywhere() throws {
        let dir = temporaryDirectory()
        let (path, events, ends) = try Self.multiFrameTrace(dir)
        #expect(ends.count >= 4)
        let full = readBytes(path)
        let headerEnd = try TraceReader(path: path).dataStart
        let cut = dir + "/cut.vft"
        for len in 0..<full.count {
            writeBytes(cut, Array(full[0..<len]))
            if len < headerEnd {
                #expect(throws: TraceError.self, "prefix of \(len) bytes must be refused") { try TraceReader(path: cut) }
                continue
            }
            let r = try TraceReader(path: cut)
            #expect(r.storedIndex == nil)
            var got: [Event] = []
            let scan = try TraceScan.run(r, eachEvent: { got.append($0) })
            let complete = ends.last { $0.end <= len }?.events ?? 0
            #expect(got == Array(events.prefix(complete)), "prefix \(len): expected \(complete) events, got \(got.count)")
            #expect(!scan.isIntact, "prefix \(len) of \(full.count) must not verify as intact")
            let tornFrame = !ends.contains { $0.end == len } && len < ends.last!.end && len > headerEnd
            if tornFrame { #expect(scan.problems.contains { $0.isTruncation }, "prefix \(len): torn frame not reported") }
        }
    }

    @Test("every single flipped bit is detected")
    func bitFlips() throws {
        let dir = temporaryDirectory()
        let (path, _, _) = try Self.multiFrameTrace(dir)
        let full = readBytes(path)
        let bad = dir + "/flip.vft"
        var undetected: [Int] = []
        for offset in 0..<full.count {
            var b = full
            b[offset] ^= UInt8(1 << (offset % 8))
            writeBytes(bad, b)
            guard let r = try? TraceReader(path: bad) else { continue } // header damage: refused
            let scan = try TraceScan.run(r)
            if scan.isIntact { undetected.append(offset) }
        }
        let r0 = try TraceReader(path: path)
        let layout = r0.storedIndex!.entries.map { "\($0.offset)+\($0.compressedSize)" }
        #expect(undetected.isEmpty, "flips at offsets \(undetected.prefix(10)) went unnoticed; header ends \(r0.dataStart), frames \(layout), size \(full.count)")
    }

    @Test("a damaged frame in the middle loses only that frame, and the index counts its events")
    func middleDamage() throws {
        let dir = temporaryDirectory()
        let (path, events, ends) = try Self.multiFrameTrace(dir)
        var b = readBytes(path)
        // Garble the middle of the second frame.
        let start = ends[0].end, end = ends[1].end
        for i in (start + 8)..<(end - 2) { b[i] = 0x55 }
        writeBytes(dir + "/d.vft", b)
        let r = try TraceReader(path: dir + "/d.vft")
        var got: [Event] = []
        let scan = try TraceScan.run(r, eachEvent: { got.append($0) })
        let lost = ends[1].events - ends[0].events
        #expect(got == Array(events.prefix(ends[0].events)) + Array(events.suffix(from: ends[1].events)))
        #expect(scan.knownLostEvents == UInt64(lost))
        #expect(!scan.isIntact)

        let out = try OutputFile.begin(dir + "/rec.vft", inputs: [])
        let rep = try TraceRecovery.recover(r, to: out)
        try out.commit()
        #expect(rep.keptEvents == UInt64(got.count))
        #expect(rep.lossRecords == 1)
        let rec = try TraceReader(path: dir + "/rec.vft")
        let recEvents = try rec.readAll()
        let losses = recEvents.compactMap { if case .loss(let l) = $0.body { return l } else { return nil } }
        #expect(losses.count == 1)
        #expect(losses.first?.count == UInt64(lost))
        #expect(try TraceScan.run(rec).isIntact)
        #expect(rec.header.captureMode.hasSuffix("+recovered"))
    }

    @Test("seeking with the index decodes from the right frame")
    func seek() throws {
        let dir = temporaryDirectory()
        let (path, events, _) = try Self.multiFrameTrace(dir)
        let r = try TraceReader(path: path)
        for from in [0, 1, 17, 33, 59, 60] as [UInt64] {
            var got: [Event] = []
            var it = try r.events(from: from)
            while got.count < 5, let e = try it.next() { got.append(e) }
            #expect(got == Array(events.dropFirst(Int(from)).prefix(5)), "from \(from)")
        }
    }

    @Test("reading only some record types gives exactly those events, with the sequence numbers, times and threads of a full read")
    func onlySomeTypes() throws {
        let dir = temporaryDirectory()
        let (path, events, _) = try Self.multiFrameTrace(dir)
        let r = try TraceReader(path: path)
        for types in [[RecordType.pin], [.open, .close, .marker], [.mapDMA, .getInfo, .checkExtension], []] {
            var got: [Event] = []
            var it = try r.events(only: RecordTypeSet(types))
            while let e = try it.next() { got.append(e) }
            let expected = events.filter { types.contains($0.body.recordType) }
            #expect(got == expected, "\(types.map(\.name)): \(got.count) of \(expected.count)")
            #expect(it.problems.isEmpty)
        }
        #expect(events.contains { $0.body.recordType == .pin } && events.contains { $0.body.recordType == .open })
    }

    @Test("foreign and empty files are refused with the offset and reason")
    func foreignFiles() throws {
        let dir = temporaryDirectory()
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "empty"),
            ("short", [0x56, 0x2A], "too short"),
            ("text", Array("hello world, not a trace\n".utf8), "text, not a binary trace"),
            ("binary", [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0, 0, 0], "bad magic 0x464c457f"),
            ("zstd", [0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0], "without a vfiotrace header"),
            ("hugeheader", [0x56, 0x2A, 0x4D, 0x18, 0xFF, 0xFF, 0xFF, 0x7F], "implausible"),
        ]
        for (name, bytes, needle) in cases {
            writeBytes(dir + "/" + name, bytes)
            do {
                _ = try TraceReader(path: dir + "/" + name)
                Issue.record("\(name) was accepted")
            } catch {
                #expect("\(error)".contains(needle), "\(name): \(error)")
            }
        }
        #expect(throws: TraceError.self) { try TraceReader(path: dir + "/does-not-exist") }
    }

    @Test("a newer major version is refused; a newer minor with unknown records and tags is read")
    func versions() throws {
        let dir = temporaryDirectory()
        var h = TraceHeader(captureMode: "test")
        h.formatMajor = 2
        try writeTrace(dir + "/v2.vft", [Event(.marker(Marker("x")))], header: h)
        #expect(throws: TraceError.newerVersion(major: 2, minor: 0)) { try TraceReader(path: dir + "/v2.vft") }

        // Minor 7: an unknown header tag and an unknown record type in a frame.
        var h7 = TraceHeader(kernelRelease: "6.12.0", captureMode: "test")
        h7.formatMinor = 7
        h7.unknownFields = [.init(tag: 99, bytes: [1, 2, 3])]
        var frame = ByteWriter()
        var codec = EventCodec()
        codec.encode(Event(seq: 0, .marker(Marker("before"))), into: &frame)
        frame.u8(0x3E) // a record type from the future
        frame.blob([9, 9, 9, 9])
        codec.encode(Event(seq: 1, .marker(Marker("after"))), into: &frame)
        var end = ByteWriter()
        end.varint(3)
        end.u32(CRC32C.checksum(frame.bytes))
        frame.u8(RecordType.frameEnd.rawValue)
        frame.blob(end.bytes)
        let z = try ZstdCompressor(level: 3)
        writeBytes(dir + "/v1.7.vft", h7.encoded() + (try z.compressFrame(frame.bytes)))
        let r = try TraceReader(path: dir + "/v1.7.vft")
        #expect(r.header.formatMinor == 7)
        #expect(r.header.unknownFields.first?.tag == 99)
        var got: [Event] = []
        let scan = try TraceScan.run(r, eachEvent: { got.append($0) })
        #expect(got.map(\.body) == [.marker(Marker("before")), .marker(Marker("after"))])
        #expect(scan.unknownRecords == 1)
        #expect(scan.problems.isEmpty)
    }

    @Test("a zip bomb frame is refused without decoding it all")
    func zipBomb() throws {
        let dir = temporaryDirectory()
        let z = try ZstdCompressor(level: 1)
        let bomb = try z.compressFrame([UInt8](repeating: 0, count: FrameScanner.maxFrameContent + 4096))
        writeBytes(dir + "/bomb.vft", TraceHeader().encoded() + bomb)
        let scan = try TraceScan.run(try TraceReader(path: dir + "/bomb.vft"))
        #expect(scan.problems.contains { $0.reason.contains("more than") })
    }
}

extension RobustnessTests {
    @Test("flipped bits are detected in traces of other shapes too", arguments: [1, 2, 3] as [UInt64])
    func bitFlipsMoreSeeds(seed: UInt64) throws {
        let dir = temporaryDirectory()
        var g = EventGenerator(seed: seed)
        let events = g.stream(30).filter { e in
            switch e.body { case .unmapDMA, .dirtyPages: false; default: true }
        }
        let path = dir + "/s.vft"
        try writeTrace(path, events, options: .init(frameBytes: 200))
        let full = readBytes(path)
        var undetected: [Int] = []
        for offset in 0..<full.count {
            for bit in [0, 4, 7] {
                var b = full
                b[offset] ^= UInt8(1 << bit)
                writeBytes(dir + "/f.vft", b)
                guard let r = try? TraceReader(path: dir + "/f.vft") else { continue }
                if try TraceScan.run(r).isIntact { undetected.append(offset) }
            }
        }
        #expect(undetected.isEmpty, "flips at offsets \(undetected.prefix(10)) of \(full.count) went unnoticed")
    }
}

@Suite("Records of newer types")
struct NewerRecordTests {
    @Test("the seek index counts every event record, known type or not: verify and info agree, --from positions count them")
    func unknownRecordsCounted() throws {
        let dir = temporaryDirectory()
        var frame = ByteWriter()
        var codec = EventCodec()
        codec.encode(Event(seq: 0, .marker(Marker("before"))), into: &frame)
        frame.u8(0x3E) // a record type from a newer writer, which counts it as an event
        frame.blob([9, 9, 9, 9])
        codec.encode(Event(seq: 2, .marker(Marker("after"))), into: &frame)
        var end = ByteWriter()
        end.varint(3)
        end.u32(CRC32C.checksum(frame.bytes))
        frame.u8(RecordType.frameEnd.rawValue)
        frame.blob(end.bytes)
        var h = TraceHeader(captureMode: "test")
        h.formatMinor = 7
        let z = try ZstdCompressor(level: 3)
        let body = h.encoded() + (try z.compressFrame(frame.bytes))
        writeBytes(dir + "/noindex.vft", body)
        // The index a writer that knows the type writes: 3 events in the frame.
        var index = try TraceScan.run(TraceReader(path: dir + "/noindex.vft")).rebuiltIndex
        index.entries[0].eventCount = 3
        writeBytes(dir + "/t.vft", body + index.encoded())
        let r = try TraceReader(path: dir + "/t.vft")
        #expect(r.storedIndex != nil)
        let scan = try TraceScan.run(r)
        #expect(scan.index == .intact, "\(scan.index)")
        #expect(scan.isIntact && scan.events == 2 && scan.unknownRecords == 1)
        // Position 1 is the unknown record: from 1 and from 2 both start at "after".
        for from in [1, 2] as [UInt64] {
            var it = try r.events(from: from)
            let first = try it.next()
            #expect(first?.body == .marker(Marker("after")), "from \(from)")
        }
        var all = try r.events()
        #expect(try all.next()?.body == .marker(Marker("before")))
    }
}

@Suite("Outputs put in place")
struct OutputCommitTests {
    /// The rename that puts the output in place can fail (here a
    /// directory took the target's name while the output was written):
    /// commit must say so, leave what is there alone and remove its
    /// temporary file, not report success over a missing output.
    @Test("a failed rename into place is an error that names the target, and leaves no temporary file")
    func failedRename() throws {
        let dir = temporaryDirectory()
        let target = dir + "/out.vft"
        let out = try OutputFile.begin(target, inputs: [])
        let fd = try out.openForWriting()
        _ = "trace".withCString { write(fd, $0, 5) }
        close(fd)
        #expect(mkdir(target, 0o755) == 0)
        #expect(mkdir(target + "/keep", 0o755) == 0)
        var message = ""
        do { try out.commit() } catch { message = error.description }
        #expect(message.contains(target), "commit did not fail: \(message)")
        #expect(message.contains("cannot put the output in place"))
        #expect(access(out.writePath, F_OK) != 0, "the temporary file was left behind")
        #expect(access(target + "/keep", F_OK) == 0)
    }
}
