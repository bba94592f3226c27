#include "holdd/cli/verb_args.h"

#include <stdexcept>

#include <CLI/CLI.hpp>

namespace holdd::cli {

using protocol::ArgKind;

VerbArgs::VerbArgs(const protocol::Verb& verb, CLI::App& command) {
  for (const protocol::Arg& arg : verb.args) {
    const std::string name(arg.name), help(arg.help);
    Value& value = values_[name];
    value.kind = arg.kind;
    CLI::Option* option = nullptr;
    switch (arg.kind) {
      case ArgKind::kFlag: option = command.add_flag(name, value.flag, help); break;
      case ArgKind::kText: option = command.add_option(name, value.text, help); break;
      case ArgKind::kTextList: option = command.add_option(name, value.list, help); break;
      case ArgKind::kNumber:
        option = command.add_option(name, value.number, help)->check(CLI::NonNegativeNumber);
        break;
    }
    if (!arg.choices.empty()) {
      option->check(CLI::IsMember(std::vector<std::string>(arg.choices.begin(), arg.choices.end())));
    }
    if (!arg.type_name.empty()) option->type_name(std::string(arg.type_name));
    if (arg.required) option->required();
  }
  for (const protocol::Arg& arg : verb.args) {
    if (arg.excludes.empty()) continue;
    command.get_option(std::string(arg.name))->excludes(command.get_option(std::string(arg.excludes)));
  }
}

const VerbArgs::Value& VerbArgs::at(std::string_view name, ArgKind kind) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.kind != kind) {
    throw std::logic_error("holdctl: no argument " + std::string(name) + " of that kind for this verb");
  }
  return it->second;
}

bool VerbArgs::flag(std::string_view name) const { return at(name, ArgKind::kFlag).flag; }

const std::string& VerbArgs::text(std::string_view name) const { return at(name, ArgKind::kText).text; }

const std::vector<std::string>& VerbArgs::list(std::string_view name) const {
  return at(name, ArgKind::kTextList).list;
}

double VerbArgs::number(std::string_view name) const { return at(name, ArgKind::kNumber).number; }

}  // namespace holdd::cli
