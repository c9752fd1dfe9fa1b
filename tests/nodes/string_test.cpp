// The string family (nodes/string.cpp): Python's str and re semantics, including the surprising
// parts. Every expectation was checked against CPython 3.11 (ComfyUI 0.8.0's runtime).
#include <gtest/gtest.h>

#include "nodes/node_runner.h"

namespace comfy::testing {
namespace {

json out(const std::string& node, const std::map<std::string, Value>& inputs) {
  return run_node(node, inputs).result.at(0).data();
}

std::map<std::string, Value> regex_in(std::string s, std::string pattern, bool ci = true, bool ml = false, bool da = false) {
  return {{"string", json(s)}, {"regex_pattern", json(pattern)}, {"case_insensitive", json(ci)},
          {"multiline", json(ml)}, {"dotall", json(da)}};
}

json extract(std::string s, std::string pattern, std::string mode, int group = 1) {
  auto in = regex_in(s, pattern);
  in["mode"] = json(mode);
  in["group_index"] = json(group);
  return out("RegexExtract", in);
}

json sub(std::string s, std::string pattern, std::string repl, bool ci = true, int count = 0) {
  return out("RegexReplace", {{"string", json(s)}, {"regex_pattern", json(pattern)}, {"replace", json(repl)},
                              {"case_insensitive", json(ci)}, {"count", json(count)}});
}

std::string error_type(const std::function<void()>& f) {
  try {
    f();
  } catch (const ComfyError& e) {
    return e.type();
  }
  return "";
}

TEST(StringNodes, ConcatenatePutsTheDelimiterBetween) {
  EXPECT_EQ(out("StringConcatenate", {{"string_a", json("a")}, {"string_b", json("b")}, {"delimiter", json(", ")}}), "a, b");
}

TEST(StringNodes, SubstringFollowsPythonSlices) {
  auto substring = [](std::string s, int start, int end) {
    return out("StringSubstring", {{"string", json(s)}, {"start", json(start)}, {"end", json(end)}});
  };
  EXPECT_EQ(substring("Hello, World", -5, -1), "Worl");  // negative indices count from the end
  EXPECT_EQ(substring("Hello", 3, 1), "");               // an empty slice, not an error
  EXPECT_EQ(substring("Hello", -100, 2), "He");          // out of range clamps
  EXPECT_EQ(substring("héllo wörld", 1, 4), "éll");      // code points, not bytes
}

TEST(StringNodes, LengthCountsCodePoints) {
  EXPECT_EQ(out("StringLength", {{"string", json("héllo🙂")}}), 6);
}

TEST(StringNodes, CaseConverterModes) {
  auto convert = [](std::string s, std::string mode) { return out("CaseConverter", {{"string", json(s)}, {"mode", json(mode)}}); };
  EXPECT_EQ(convert("they're 2nd-class ÉCOLE", "Title Case"), "They'Re 2Nd-Class École");
  EXPECT_EQ(convert("hELLO wORLD", "Capitalize"), "Hello world");
  EXPECT_EQ(convert("straße", "UPPERCASE"), "STRASSE");
  EXPECT_EQ(convert("ÀB", "lowercase"), "àb");
}

TEST(StringNodes, TrimRemovesUnicodeWhitespace) {
  auto trim = [](std::string s, std::string mode) { return out("StringTrim", {{"string", json(s)}, {"mode", json(mode)}}); };
  EXPECT_EQ(trim(" \t\u3000 text \n\x1c", "Both"), "text");
  EXPECT_EQ(trim("  x  ", "Left"), "x  ");
  EXPECT_EQ(trim("  x  ", "Right"), "  x");
}

TEST(StringNodes, ReplaceWithAnEmptyFindInsertsEverywhere) {
  auto replace = [](std::string s, std::string f, std::string r) {
    return out("StringReplace", {{"string", json(s)}, {"find", json(f)}, {"replace", json(r)}});
  };
  EXPECT_EQ(replace("abc", "", "-"), "-a-b-c-");
  EXPECT_EQ(replace("aaa", "aa", "b"), "ba");
}

TEST(StringNodes, ContainsAndCompare) {
  EXPECT_EQ(out("StringContains", {{"string", json("abc")}, {"substring", json("")}, {"case_sensitive", json(true)}}), true);
  EXPECT_EQ(out("StringContains", {{"string", json("ABC")}, {"substring", json("bc")}, {"case_sensitive", json(true)}}), false);
  EXPECT_EQ(out("StringContains", {{"string", json("ABC")}, {"substring", json("bc")}, {"case_sensitive", json(false)}}), true);
  auto compare = [](std::string a, std::string b, std::string mode, bool cs) {
    return out("StringCompare", {{"string_a", json(a)}, {"string_b", json(b)}, {"mode", json(mode)}, {"case_sensitive", json(cs)}});
  };
  EXPECT_EQ(compare("Hello", "HE", "Starts With", false), true);
  EXPECT_EQ(compare("Hello", "HE", "Starts With", true), false);
  EXPECT_EQ(compare("Hello", "LO", "Ends With", false), true);
  EXPECT_EQ(compare("ÉCOLE", "école", "Equal", false), true);
}

TEST(StringNodes, RegexMatchFlags) {
  EXPECT_EQ(out("RegexMatch", regex_in("a\nb", "^b")), false);
  EXPECT_EQ(out("RegexMatch", regex_in("a\nb", "^b", true, true)), true);         // multiline
  EXPECT_EQ(out("RegexMatch", regex_in("a\nb", "a.b")), false);
  EXPECT_EQ(out("RegexMatch", regex_in("a\nb", "a.b", true, false, true)), true);  // dotall
  EXPECT_EQ(out("RegexMatch", regex_in("HELLO", "hello")), true);                  // case-insensitive by default
  EXPECT_EQ(out("RegexMatch", regex_in("HELLO", "hello", false)), false);
  EXPECT_EQ(out("RegexMatch", regex_in("abc\n", "c\\Z")), false);  // Python's \Z is the very end
  EXPECT_EQ(out("RegexMatch", regex_in("abc\n", "c$")), true);
  EXPECT_EQ(out("RegexMatch", regex_in("hello wörld", "\\bwörld\\b")), true);
  EXPECT_EQ(out("RegexMatch", regex_in("abc", "(")), false);  // a bad pattern is no match
}

TEST(StringNodes, RegexExtractModes) {
  EXPECT_EQ(extract("a1 b22 c333", "\\d+", "First Match"), "1");
  EXPECT_EQ(extract("a1 b22 c333", "\\d+", "All Matches"), "1\n22\n333");
  // re.findall with a group returns the group, not the whole match
  EXPECT_EQ(extract("x1 y2 x33", "x(\\d+)", "All Matches"), "1\n33");
  EXPECT_EQ(extract("1a 2b 3c", "(\\d)(\\w)", "All Matches"), "1\n2\n3");
  EXPECT_EQ(extract("1a 2b 3c", "(\\d)(\\w)", "First Group", 2), "a");
  EXPECT_EQ(extract("1a 2b 3c", "(\\d)(\\w)", "First Group", 0), "1a");
  EXPECT_EQ(extract("1a 2b 3c", "(\\d)(\\w)", "First Group", 3), "");
  EXPECT_EQ(extract("1a 2b 3c", "(\\d)(\\w)", "All Groups", 2), "a\nb\nc");
  EXPECT_EQ(extract("naïve café", "\\w+", "All Matches"), "naïve\ncafé");
  EXPECT_EQ(extract("abc", "[", "First Match"), "");  // re.error: empty result
  EXPECT_TRUE(extract("b", "(a)|(b)", "First Group", 1).is_null());  // a group that did not take part: None
  EXPECT_EQ(error_type([] { extract("b", "(a)|(b)", "All Groups", 1); }), "TypeError");  // "\n".join([None])
}

TEST(StringNodes, RegexReplaceTemplates) {
  EXPECT_EQ(sub("me@home you@work", "(\\w+)@(\\w+)", "\\2 at \\1"), "home at me work at you");
  EXPECT_EQ(sub("me@home", "(?P<user>\\w+)@(?P<host>\\w+)", "\\g<host>/\\g<user>/\\g<0>"), "home/me/me@home");
  EXPECT_EQ(sub("a", "(a)", "\\g<1>0"), "a0");
  EXPECT_EQ(sub("ab", "(a)|b", "[\\1]"), "[a][]");  // an unmatched group is empty
  EXPECT_EQ(sub("o", "o", "\\n\\t\\\\\\&"), "\n\t\\\\&");  // known escapes, unknown ones kept
  EXPECT_EQ(sub("abxd", "x*", "-"), "-a-b--d-");           // empty matches, Python 3.7+ rules
  EXPECT_EQ(sub("line\n", "$", "!"), "line!\n!");
  EXPECT_EQ(sub("aaaa", "a", "b", true, 2), "bbaa");        // count
  EXPECT_EQ(sub("aAaA", "A", "b"), "bbbb");                 // case-insensitive by default
  EXPECT_EQ(sub("aAaA", "A", "b", false), "abab");
  EXPECT_EQ(sub("ÉCOLE é", "é", "E"), "ECOLE E");
}

TEST(StringNodes, RegexReplaceErrorsAreReErrors) {
  EXPECT_EQ(error_type([] { sub("a", "a", "\\q"); }), "re.error");  // bad escape \q
  EXPECT_EQ(error_type([] { sub("a", "a", "\\1"); }), "re.error");  // invalid group reference
  EXPECT_EQ(error_type([] { sub("a", "(", "x"); }), "re.error");    // missing )
  EXPECT_EQ(error_type([] { sub("a", "(a)", "\\g<nope>"); }), "IndexError");
}

TEST(LogicNodes, SwitchPicksABranchAndAsksOnlyForIt) {
  EXPECT_EQ(out("ComfySwitchNode", {{"switch", json(true)}, {"on_true", json("yes")}, {"on_false", json("no")}}), "yes");
  EXPECT_EQ(out("ComfySwitchNode", {{"switch", json(false)}, {"on_true", json("yes")}, {"on_false", json("no")}}), "no");
  const NodeDef* def = node_registry().find("ComfySwitchNode");
  Services services;
  std::atomic<bool> interrupt{false};
  ExecutionContext ctx(services, "p", "1", &interrupt, [](double, double) {});
  NodeInputs in;
  in.values["switch"] = {Value(json(true))};
  in.values["on_false"] = {Value()};
  in.values["on_true"] = {Value()};
  EXPECT_EQ(def->check_lazy_status(ctx, in), std::vector<std::string>{"on_true"});
  in.values["on_true"] = {Value(json(1))};
  EXPECT_TRUE(def->check_lazy_status(ctx, in).empty());
}

TEST(LogicNodes, CustomComboReturnsTheChoice) {
  EXPECT_EQ(out("CustomCombo", {{"choice", json("anything")}}), "anything");
}

}  // namespace
}  // namespace comfy::testing
