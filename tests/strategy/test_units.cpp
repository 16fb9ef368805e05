#include <gtest/gtest.h>

#include "strategy/units.hpp"

using namespace tandem::strategy;

TEST(Units, BytesUseDecimalAndBinaryPrefixes) {
  EXPECT_DOUBLE_EQ(parse_bytes("25MB"), 25e6);
  EXPECT_DOUBLE_EQ(parse_bytes("64MiB"), 64.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(parse_bytes("1GiB"), 1024.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(parse_bytes("80GB"), 80e9);
  EXPECT_DOUBLE_EQ(parse_bytes("4096B"), 4096);
  EXPECT_DOUBLE_EQ(parse_bytes("1.5 kB"), 1500);
}

TEST(Units, BandwidthDistinguishesBitsFromBytes) {
  EXPECT_DOUBLE_EQ(parse_bandwidth("300GB/s"), 300e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("200Gbps"), 25e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("200Gb/s"), 25e9);
  EXPECT_DOUBLE_EQ(parse_bandwidth("10Gbps"), 1.25e9);
}

TEST(Units, Durations) {
  EXPECT_DOUBLE_EQ(parse_duration("1us"), 1e-6);
  EXPECT_DOUBLE_EQ(parse_duration("30ms"), 30e-3);
  EXPECT_DOUBLE_EQ(parse_duration("2s"), 2);
  EXPECT_DOUBLE_EQ(parse_duration("500ns"), 500e-9);
}

TEST(Units, MissingOrUnknownUnitsAreErrors) {
  EXPECT_THROW(parse_bytes("25"), UnitError);
  EXPECT_THROW(parse_bytes("25mb"), UnitError);
  EXPECT_THROW(parse_bandwidth("300"), UnitError);
  EXPECT_THROW(parse_bandwidth("300GB"), UnitError);
  EXPECT_THROW(parse_duration("1"), UnitError);
  EXPECT_THROW(parse_duration("-1us"), UnitError);
  EXPECT_THROW(parse_number("3GB"), UnitError);
  EXPECT_DOUBLE_EQ(parse_number("300e9"), 300e9);
  try {
    parse_bandwidth("300 GBps");
    FAIL();
  } catch (const UnitError& error) {
    EXPECT_NE(std::string(error.what()).find("200Gbps"), std::string::npos) << error.what();
  }
}

TEST(Units, ScenarioTextRoundTrips) {
  for (double bytes : {25e6, 64.0 * 1024 * 1024, 1e9, 4096.0, 3.0})
    EXPECT_DOUBLE_EQ(parse_bytes(bytes_to_scenario_text(bytes)), bytes);
  for (double bandwidth : {25e9, 300e9, 1.25e9, 5e9, 12.5e6})
    EXPECT_DOUBLE_EQ(parse_bandwidth(bandwidth_to_scenario_text(bandwidth)), bandwidth);
  for (double seconds : {1e-6, 2e-6, 0.03, 1.5e-6, 2.0})
    EXPECT_NEAR(parse_duration(duration_to_scenario_text(seconds)), seconds, 1e-15);
}
