// XCTest suite for the generated Swift module `Meterkit`, written for a macOS CI.
// NOT COMPILED OR RUN on the project's Linux CI (no Swift toolchain there): scripts/test-mobile
// only generates the Swift sources and checks their main declarations. To run: generate with
// scripts/generate-mobile on macOS, put Meterkit.swift + MeterkitFFI.{h,modulemap} + the dylib in
// a SwiftPM target `Meterkit`, this file in its test target, then `swift test`.
import Foundation
import XCTest
@testable import Meterkit

final class MeterkitTests: XCTestCase {
    func date(_ s: String) -> Date { ISO8601DateFormatter().date(from: s)! }
    func dec(_ s: String) -> Foundation.Decimal { Foundation.Decimal(string: s, locale: Locale(identifier: "en_US_POSIX"))! }

    func rec(_ id: String, _ q: String, _ at: String) -> UsageRecord {
        UsageRecord(id: id, tenant: "t", subject: "m1", metric: "kwh", quantity: dec(q), timestamp: date(at),
                    end: nil, dimensions: [:], quality: .actual)
    }

    func testIngestDuplicatesAndConflicts() throws {
        let engine = try Engine.inMemory(notifier: nil)
        let r = rec("r1", "0.5", "2024-03-10T00:00:00Z")
        let report = try engine.ingest(records: [r, r])
        XCTAssertEqual(report.accepted, 1)
        XCTAssertEqual(report.duplicates, 1)
        var changed = r
        changed.quantity = dec("2")
        let conflict = try engine.ingestOne(record: changed)
        XCTAssertEqual(conflict.rejected.first?.code, "E_CONFLICT")
    }

    func testRolloverOnEightDigits() throws {
        let first = MeterReading(meter: "m1", timestamp: date("2024-01-01T00:00:00Z"), register: dec("99999678"),
                                 registerDigits: 8, multiplier: dec("1"), kind: .actual)
        let next = MeterReading(meter: "m1", timestamp: date("2024-02-01T00:00:00Z"), register: dec("123"),
                                registerDigits: 8, multiplier: dec("1"), kind: .actual)
        let check = try validateReading(tenant: "t", metric: "kwh", history: [first], reading: next,
                                        config: nil, now: date("2024-03-01T00:00:00Z"))
        XCTAssertEqual(check.consumption?.quantity, dec("445"))
        XCTAssertEqual(check.findings.first?.rule, .rollover)
        XCTAssertFalse(check.rejected)
    }

    func testErrorsCarryKindAndFields() throws {
        let engine = try Engine.inMemory(notifier: nil)
        XCTAssertThrowsError(try engine.retract(tenant: "t", id: "nope")) { error in
            // One error type: the envelope without a switch over the kinds.
            guard let e = error as? MeterkitError else { return XCTFail("expected MeterkitError, got \(error)") }
            XCTAssertEqual(e.code(), "E_NOT_FOUND")
            XCTAssertEqual(e.kind(), "not_found")
            XCTAssertFalse(e.retryable())
            guard case MeterkitError.NotFound = e else { return XCTFail("expected NotFound, got \(e)") }
        }
        XCTAssertThrowsError(try parseDecimal(text: "twelve")) { error in
            XCTAssertEqual((error as? MeterkitError)?.code(), "E_PARSE")
        }
    }

    func testCallsAfterCloseThrowClosed() throws {
        let engine = try Engine.inMemory(notifier: nil)
        engine.close()
        XCTAssertThrowsError(try engine.pendingCount(tenant: "t")) { error in
            XCTAssertEqual((error as? MeterkitError)?.code(), "E_CLOSED")
            XCTAssertEqual((error as? MeterkitError)?.kind(), "closed")
        }
    }

    final class Collecting: Notifier, @unchecked Sendable {
        var events: [MobileEvent] = []
        func notify(event: MobileEvent) throws { events.append(event) }
    }

    func testSwiftNotifier() throws {
        let events = Collecting()
        let engine = try Engine.inMemory(notifier: events)
        _ = try engine.ingest(records: [rec("r1", "1", "2024-03-10T00:00:00Z")])
        _ = try engine.ingest(records: [rec("r1", "2", "2024-03-10T00:00:00Z")])
        XCTAssertEqual(events.events.count, 1)
        if case let .recordRejected(_, id, kind, _) = events.events[0] {
            XCTAssertEqual(id, "r1")
            XCTAssertEqual(kind, "conflict")
        } else {
            XCTFail("expected recordRejected, got \(events.events[0])")
        }
    }

    func testQueueExportImport() throws {
        let device = try Engine.inMemory(notifier: nil)
        _ = try device.queue(records: [rec("a", "1", "2024-03-10T00:00:00Z"), rec("b", "2", "2024-03-10T01:00:00Z")])
        XCTAssertEqual(try device.pendingCount(tenant: "t"), 2)
        let body = try device.exportPendingJson(tenant: "t", limit: 100)
        let server = try Engine.inMemory(notifier: nil)
        XCTAssertEqual(try server.importJson(json: body).accepted, 2)
        XCTAssertEqual(try server.importJson(json: body).duplicates, 2)
        XCTAssertEqual(try device.markUploaded(tenant: "t", ids: ["a", "b"]), 2)
        XCTAssertEqual(try device.pendingCount(tenant: "t"), 0)
    }

    func testBillKeepsMinorUnits() throws {
        let tariff = try Tariff.fromJson(text: #"{"currency":"GBP","charges":[{"id":"standing","type":"fixed","per":"day","amount":"0.40"}]}"#)
        let request = BillRequest(tenant: "t", subject: "home", metric: "kwh", periodStart: date("2023-02-01T00:00:00Z"),
                                  periodEnd: date("2023-03-01T00:00:00Z"), timeZone: "UTC")
        let bill = try estimateBill(tariff: tariff, request: request, records: [])
        XCTAssertEqual(bill.total, dec("11.20"))
    }
}
