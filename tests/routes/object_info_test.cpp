// GET /object_info and /object_info/{node_class}.
#include <gtest/gtest.h>

#include "routes/fixture.h"

namespace comfy::testing {
namespace {

TEST(RouteObjectInfo, AllOneAndUnknown) {
  TestServer s;
  for (auto& path : both("/object_info")) {
    json all = s.get(path).json_body();
    ASSERT_TRUE(all.contains("TestInt"));
    EXPECT_EQ(all.begin().key(), s.env.registry.all().front().name);  // registration order
    EXPECT_EQ(all["TestInt"], s.env.registry.object_info(*s.env.registry.find("TestInt"), s.env.services));
    EXPECT_EQ(all["TestOutput"]["output_node"], true);
  }
  for (auto& path : both("/object_info/TestSlow")) {
    json one = s.get(path).json_body();
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one["TestSlow"]["name"], "TestSlow");
  }
  // The probe real clients make: an unknown class is 200 {} (spec api-clients 1a).
  HttpResult unknown = s.get("/object_info/Primitive%20boolean%20%5BCrystools%5D");
  EXPECT_EQ(unknown.status, 200);
  EXPECT_EQ(unknown.json_body(), json::object());
}

}  // namespace
}  // namespace comfy::testing
