"""The BASIC programs of the seed documents, copied exactly as written.

Generated from ../shared/seeds/000_*.txt (fenced ``basic`` blocks), 001_*.txt (fenced blocks)
and 002_*.txt (line ranges of the code listings; that page lost its indentation, so its
programs are flush left, as in the seed). Do not edit them to make a test pass: a program
that needs completing is completed in the test that runs it, and the test says how.
"""

from __future__ import annotations

# 000_f1dc73413be0f835.txt: Syntax
S000_SYNTAX = """\
SET USER MEMORY "key", value
"""

# 000_f1dc73413be0f835.txt: Examples / Basic Usage
S000_BASIC_USAGE = """\
' Store user preferences
SET USER MEMORY "language", "pt-BR"
SET USER MEMORY "timezone", "America/Sao_Paulo"
SET USER MEMORY "theme", "dark"

TALK "Preferences saved!"
"""

# 000_f1dc73413be0f835.txt: Store Complex Objects
S000_COMPLEX_OBJECTS = """\
' Store user profile
profile = #{\x20
    name: username,
    email: useremail,
    plan: "premium",
    signupDate: NOW()
}
SET USER MEMORY "profile", profile

TALK "Profile updated successfully!"
"""

# 000_f1dc73413be0f835.txt: Cross-Bot Data Sharing (sales-bot part, then support-bot part)
S000_CROSS_BOT_SHARING = """\
' In sales-bot: Store purchase history
purchase = #{
    orderId: orderid,
    amount: total,
    date: NOW()
}
SET USER MEMORY "lastPurchase", purchase

' In support-bot: Access the same data
lastPurchase = GET USER MEMORY("lastPurchase")
TALK "I see your last order was #" + lastPurchase.orderId
"""

# 000_f1dc73413be0f835.txt: User Preferences for Personalization
S000_PERSONALIZATION = """\
' Check if returning user
name = GET USER MEMORY("name")

IF name = "" THEN
    TALK "Welcome! What's your name?"
    HEAR name
    SET USER MEMORY "name", name
    TALK "Nice to meet you, " + name + "!"
ELSE
    TALK "Welcome back, " + name + "!"
END IF
"""

# 000_f1dc73413be0f835.txt: Store User Facts
S000_USER_FACTS = """\
' Store facts about the user for AI context
SET USER MEMORY "fact_occupation", "software engineer"
SET USER MEMORY "fact_interests", "AI, automation, productivity"
SET USER MEMORY "fact_company", "Acme Corp"

' These can be used to personalize AI responses
"""

# 001_73d092c10d8e51eb.txt: Syntax
S001_SYNTAX = """\
SET_BOT_MEMORY "key" "value"
"""

# 001_73d092c10d8e51eb.txt: Example
S001_EXAMPLE = """\
' Store a greeting message
SET_BOT_MEMORY "last_greeting" "Hello, world!"

' Retrieve it later
GET_BOT_MEMORY "last_greeting" INTO GREETING
TALK GREETING
"""

# 002_2a055c7b1484a2b3.txt: User Memory / Keywords
S002_USER_KEYWORDS = """\
' Store user data
SET USER MEMORY "key", value
' Retrieve user data
value = GET USER MEMORY("key")
' Store a fact about the user
SET USER FACT "occupation", "software engineer"
' Get all user facts
facts = USER FACTS()
"""

# 002_2a055c7b1484a2b3.txt: Personalized Greeting
S002_PERSONALIZED_GREETING = """\
' Check if returning user
name = GET USER MEMORY("name")
IF name = "" THEN
TALK "Hello! What's your name?"
HEAR name
SET USER MEMORY "name", name
TALK "Nice to meet you, " + name + "!"
ELSE
TALK "Welcome back, " + name + "!"
END IF
"""

# 002_2a055c7b1484a2b3.txt: Cross-Bot Preferences (store part, then use part)
S002_CROSS_BOT_PREFERENCES = """\
' In any bot - store preference
SET USER MEMORY "language", "pt-BR"
SET USER MEMORY "timezone", "America/Sao_Paulo"
' In any other bot - use preference
language = GET USER MEMORY("language")
IF language = "pt-BR" THEN
TALK "Olá! Como posso ajudar?"
ELSE
TALK "Hello! How can I help?"
END IF
"""

# 002_2a055c7b1484a2b3.txt: User Facts for AI Context
S002_USER_FACTS_AI = """\
' Store facts about the user
SET USER FACT "company", "Acme Corp"
SET USER FACT "role", "Product Manager"
SET USER FACT "interests", "AI, automation, productivity"
' Later, use facts to personalize AI responses
facts = USER FACTS()
SET CONTEXT "user_profile" AS facts
response = LLM "Help me draft a product roadmap"
' AI now knows user's role and interests
"""

# 002_2a055c7b1484a2b3.txt: Bot Memory / Keywords
S002_BOT_KEYWORDS = """\
' Store bot data
SET BOT MEMORY "key", value
' Retrieve bot data
value = GET BOT MEMORY("key")
"""

# 002_2a055c7b1484a2b3.txt: Bot Statistics
S002_BOT_STATISTICS = """\
' Track bot usage
conversations = GET BOT MEMORY("total_conversations")
conversations = conversations + 1
SET BOT MEMORY "total_conversations", conversations
PRINT "This bot has had " + conversations + " conversations"
"""

# 002_2a055c7b1484a2b3.txt: Feature Flags
S002_FEATURE_FLAGS = """\
' Store feature configuration
SET BOT MEMORY "enable_voice", true
SET BOT MEMORY "max_retries", 3
SET BOT MEMORY "welcome_message", "Hello! I'm your assistant."
' Use in logic
enableVoice = GET BOT MEMORY("enable_voice")
IF enableVoice THEN
' Enable voice features
END IF
"""

# 002_2a055c7b1484a2b3.txt: Cache API Results
S002_CACHE_API = """\
' Cache expensive API calls
cachedRates = GET BOT MEMORY("exchange_rates")
cachedTime = GET BOT MEMORY("exchange_rates_time")
IF cachedRates = "" OR (NOW() - cachedTime) > 3600 THEN
' Refresh cache
rates = GET "https://api.exchangerate.host/latest"
SET BOT MEMORY "exchange_rates", rates
SET BOT MEMORY "exchange_rates_time", NOW()
ELSE
rates = cachedRates
END IF
"""

# 002_2a055c7b1484a2b3.txt: Session Memory / Keywords
S002_SESSION_KEYWORDS = """\
' Store in session
SET "key", value
' Retrieve from session
value = GET "key"
' Set context for AI
SET CONTEXT "topic" AS "billing inquiry"
"""

# 002_2a055c7b1484a2b3.txt: Conversation State
S002_CONVERSATION_STATE = """\
' Track conversation flow
SET "current_step", "collecting_info"
SET "collected_name", username
SET "collected_email", useremail
' Later in conversation
step = GET "current_step"
IF step = "collecting_info" THEN
' Continue collecting
END IF
"""

# 002_2a055c7b1484a2b3.txt: Multi-Turn Context
S002_MULTI_TURN_CONTEXT = """\
' Build context through conversation
SET CONTEXT "customer_id" AS customerid
SET CONTEXT "issue_type" AS "refund"
SET CONTEXT "order_id" AS orderid
' AI has full context for responses
response = LLM "Help resolve this customer issue"
"""

# 002_2a055c7b1484a2b3.txt: Episodic Memory / Example
S002_EPISODIC = """\
' System automatically creates episode summaries
' Example summary stored:
' {
' "conversation_id": "abc123",
' "summary": "User asked about refund policy, was satisfied with explanation",
' "topics": ["refunds", "policy"],
' "sentiment": "positive",
' "resolution": "resolved",
' "created_at": "2025-01-15T10:30:00Z"
' }
' In future conversations, retrieve relevant episodes
episodes = GET USER MEMORY("recent_episodes")
SET CONTEXT "previous_interactions" AS episodes
"""

# 002_2a055c7b1484a2b3.txt: Profile Builder Pattern
S002_PROFILE_BUILDER = """\
' Check what we know
profile = GET USER MEMORY("profile")
IF profile = "" THEN
profile = #{ }
END IF
' Fill in missing information naturally
IF profile.name = "" THEN
' Ask for name when appropriate
END IF
IF profile.preferences = "" THEN
' Learn preferences from behavior
END IF
' Update profile
SET USER MEMORY "profile", profile
"""

# 002_2a055c7b1484a2b3.txt: Preference Learning Pattern
S002_PREFERENCE_LEARNING = """\
' Track user choices
choice = HEAR selection
choices = GET USER MEMORY("choices_history")
IF choices = "" THEN choices = []
' Add new choice
choices = APPEND(choices, #{
choice: choice,
context: currentContext,
timestamp: NOW()
})
SET USER MEMORY "choices_history", choices
' Analyze patterns periodically
IF LEN(choices) >= 10 THEN
preferences = LLM "Analyze these choices and identify preferences: " + JSON(choices)
SET USER MEMORY "learned_preferences", preferences
END IF
"""

# 002_2a055c7b1484a2b3.txt: Context Handoff Pattern (whole snippet)
S002_HANDOFF = """\
' Sending bot: Store context for receiving bot
handoffContext = #{
topic: currentTopic,
userIntent: detectedIntent,
conversationSummary: summary,
relevantFacts: facts
}
SET USER MEMORY "handoff_context", handoffContext
' Transfer to specialist
TRANSFER CONVERSATION TO "specialist-bot"
' Receiving bot: Retrieve context
context = GET USER MEMORY("handoff_context")
SET CONTEXT "background" AS context.conversationSummary
SET CONTEXT "intent" AS context.userIntent
' Clear handoff context after use
SET USER MEMORY "handoff_context", ""
"""

# 002_2a055c7b1484a2b3.txt: Context Handoff Pattern, sending bot part
S002_HANDOFF_SENDER = """\
' Sending bot: Store context for receiving bot
handoffContext = #{
topic: currentTopic,
userIntent: detectedIntent,
conversationSummary: summary,
relevantFacts: facts
}
SET USER MEMORY "handoff_context", handoffContext
' Transfer to specialist
TRANSFER CONVERSATION TO "specialist-bot"
"""

# 002_2a055c7b1484a2b3.txt: Context Handoff Pattern, receiving bot part
S002_HANDOFF_RECEIVER = """\
' Receiving bot: Retrieve context
context = GET USER MEMORY("handoff_context")
SET CONTEXT "background" AS context.conversationSummary
SET CONTEXT "intent" AS context.userIntent
' Clear handoff context after use
SET USER MEMORY "handoff_context", ""
"""

# 002_2a055c7b1484a2b3.txt: TTL Pattern
S002_TTL = """\
' Store with expiration (implementation depends on memory type)
' For session-like data in user memory:
SET USER MEMORY "temp_auth_code", #{
code: authCode,
expires: NOW() + 300 ' 5 minutes
}
' Check expiration
stored = GET USER MEMORY("temp_auth_code")
IF stored <> "" AND stored.expires > NOW() THEN
' Valid
ELSE
' Expired or not found
SET USER MEMORY "temp_auth_code", ""
END IF
"""

# 002_2a055c7b1484a2b3.txt: Key Naming Conventions
S002_KEY_NAMING = """\
' Use consistent prefixes
SET USER MEMORY "pref_language", "en" ' Preferences
SET USER MEMORY "pref_timezone", "UTC"
SET USER MEMORY "fact_name", "John" ' Facts
SET USER MEMORY "fact_company", "Acme"
SET USER MEMORY "ctx_last_topic", "sales" ' Context
SET USER MEMORY "cache_products", data ' Cached data
"""

# 002_2a055c7b1484a2b3.txt: Don't Store Sensitive Data
S002_SENSITIVE_DATA = """\
' ❌ DON'T: Store sensitive data
SET USER MEMORY "password", userPassword
SET USER MEMORY "ssn", socialSecurityNumber
SET USER MEMORY "credit_card", cardNumber
' ✅ DO: Store references only
SET USER MEMORY "payment_method_id", paymentId
SET USER MEMORY "verified", true
"""

# 002_2a055c7b1484a2b3.txt: Handle Missing Data Gracefully
S002_MISSING_DATA = """\
' Always check for empty/missing
name = GET USER MEMORY("name")
IF name = "" THEN
name = "there" ' Default value
END IF
TALK "Hello, " + name + "!"
"""

# 002_2a055c7b1484a2b3.txt: Clean Up Old Data
S002_CLEANUP = """\
' Periodic cleanup of old data
lastCleanup = GET BOT MEMORY("last_memory_cleanup")
IF lastCleanup = "" OR (NOW() - lastCleanup) > 86400 THEN
' Run cleanup logic
' Remove expired entries, old cache, etc.
SET BOT MEMORY "last_memory_cleanup", NOW()
END IF
"""

ALL_PROGRAMS: dict[str, str] = {
    "S000_SYNTAX": S000_SYNTAX,
    "S000_BASIC_USAGE": S000_BASIC_USAGE,
    "S000_COMPLEX_OBJECTS": S000_COMPLEX_OBJECTS,
    "S000_CROSS_BOT_SHARING": S000_CROSS_BOT_SHARING,
    "S000_PERSONALIZATION": S000_PERSONALIZATION,
    "S000_USER_FACTS": S000_USER_FACTS,
    "S001_SYNTAX": S001_SYNTAX,
    "S001_EXAMPLE": S001_EXAMPLE,
    "S002_USER_KEYWORDS": S002_USER_KEYWORDS,
    "S002_PERSONALIZED_GREETING": S002_PERSONALIZED_GREETING,
    "S002_CROSS_BOT_PREFERENCES": S002_CROSS_BOT_PREFERENCES,
    "S002_USER_FACTS_AI": S002_USER_FACTS_AI,
    "S002_BOT_KEYWORDS": S002_BOT_KEYWORDS,
    "S002_BOT_STATISTICS": S002_BOT_STATISTICS,
    "S002_FEATURE_FLAGS": S002_FEATURE_FLAGS,
    "S002_CACHE_API": S002_CACHE_API,
    "S002_SESSION_KEYWORDS": S002_SESSION_KEYWORDS,
    "S002_CONVERSATION_STATE": S002_CONVERSATION_STATE,
    "S002_MULTI_TURN_CONTEXT": S002_MULTI_TURN_CONTEXT,
    "S002_EPISODIC": S002_EPISODIC,
    "S002_PROFILE_BUILDER": S002_PROFILE_BUILDER,
    "S002_PREFERENCE_LEARNING": S002_PREFERENCE_LEARNING,
    "S002_HANDOFF": S002_HANDOFF,
    "S002_HANDOFF_SENDER": S002_HANDOFF_SENDER,
    "S002_HANDOFF_RECEIVER": S002_HANDOFF_RECEIVER,
    "S002_TTL": S002_TTL,
    "S002_KEY_NAMING": S002_KEY_NAMING,
    "S002_SENSITIVE_DATA": S002_SENSITIVE_DATA,
    "S002_MISSING_DATA": S002_MISSING_DATA,
    "S002_CLEANUP": S002_CLEANUP,
}
